"""Evaluation: a template over a dataset of cases × one or more models, pass/fail per cell.

    template = TemplateRegistry(settings.prompts_dir).get("classify")
    dataset = load_dataset("prompts/datasets/classify.csv", template)     # or DatasetError
    dataset = await load_dataset_async(uploaded_path, template)           # a server: off the event loop
    async for step in evaluate(service, template, dataset, ["demo:assistant"], concurrency=4):
        ...                                         # step.done / step.total, step.result
    report = await run_evaluation(service, template, dataset, models)   # EvalReport
    report.summary(); report.matrix(failures_only=True); report.write("results.csv")
"""

from llmtool.evaluation.dataset import Case, Dataset, DatasetError, Expectations, load_dataset, load_dataset_async
from llmtool.evaluation.results import CaseResult, EvalReport, ModelSummary
from llmtool.evaluation.runner import (
    EvalProgress,
    build_report,
    evaluate,
    resolve_models,
    run_evaluation,
)

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
