"""Evaluation: a template over a dataset of cases × one or more models, pass/fail per cell.

    template = TemplateRegistry(settings.prompts_dir).get("classify")
    dataset = load_dataset("prompts/datasets/classify.csv", template)     # or DatasetError
    dataset = await load_dataset_async(uploaded_path, template)           # a server: off the event loop
    async for step in evaluate(service, template, dataset, ["demo:assistant"], concurrency=4):
        ...                                         # step.done / step.total, step.result
    report = await run_evaluation(service, template, dataset, models, repeat=3, name="v2")   # EvalReport
    report.summary(); report.matrix(failures_only=True); report.write("results.csv")
    report.results[0].assertions          # each expectation and assertion: type, label, passed, score, reason
    report.repeated()                     # per (case, model): pass rate, spread, failure reasons

The names below are imported on first use: a checking process that unpickles an assertion
(`llmtool.evaluation.assertion_kinds`) does not pay for the runner, the service and the SDKs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmtool.evaluation.dataset import Case, Dataset, DatasetError, Expectations, load_dataset, load_dataset_async
    from llmtool.evaluation.results import CaseResult, EvalReport, ModelSummary
    from llmtool.evaluation.runner import EvalProgress, build_report, evaluate, resolve_models, run_evaluation

_HOMES = {
    "Case": "dataset", "Dataset": "dataset", "DatasetError": "dataset", "Expectations": "dataset",
    "load_dataset": "dataset", "load_dataset_async": "dataset",
    "CaseResult": "results", "EvalReport": "results", "ModelSummary": "results",
    "EvalProgress": "runner", "build_report": "runner", "evaluate": "runner", "resolve_models": "runner",
    "run_evaluation": "runner",
}

__all__ = [
    "Case",
    "CaseResult",
    "Dataset",
    "DatasetError",
    "EvalProgress",
    "EvalReport",
    "Expectations",
    "ModelSummary",
    "build_report",
    "evaluate",
    "load_dataset",
    "load_dataset_async",
    "resolve_models",
    "run_evaluation",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
