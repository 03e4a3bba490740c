"""Keeping an evaluation in the run store as a unit: its versions, models, name and repeats when it
starts, and one cell per (case, model) when it ends, with each of the cell's runs in detail.

    stored = await store_start(service, template, dataset, models, origin, name="v2", repeats=3)
    ...
    await store_end(service, origin, results, finished=True)

A cell passes when every one of its runs passed (a flaky case fails: a baseline calls it regressed
when it passed before). Its `run_id` is its first run's, its `reason` its first failure's, prefixed
with how many runs passed when it ran several times ("2/3 runs passed; expected to contain 'x'").
`EvaluationCell.runs` keeps every run's verdict, assertion results and measures (`CellRun`), which
`llmtool.store.evaluation_queries` reads back. A store that fails never stops the evaluation: its
runs are still kept one by one, and the failure is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from llmtool.store import CellAssertion, CellRun, EvaluationCell, EvaluationRecord, RunOrigin

if TYPE_CHECKING:
    from llmtool.evaluation.dataset import Dataset
    from llmtool.evaluation.results import CaseResult
    from llmtool.service import LLMService
    from llmtool.templates.template import Template

log = logging.getLogger(__name__)


async def store_start(service: LLMService, template: Template, dataset: Dataset, models: list[str],
                      origin: RunOrigin, *, name: str | None = None, repeats: int = 1) -> bool:
    """Add the evaluation's record (status running); False when there is no store or it failed."""
    if service.store is None or origin.evaluation_id is None:
        return False
    try:
        await service.store.add_evaluation(EvaluationRecord(
            id=origin.evaluation_id, user=origin.user, template=template.name,
            template_hash=template.content_hash, dataset=dataset.path.name, dataset_hash=dataset.content_hash,
            models=models, name=name, repeats=repeats,
        ))
    except Exception:  # the evaluation still runs; its runs are kept one by one
        log.warning("could not store evaluation %s", origin.evaluation_id, exc_info=True)
        return False
    return True


async def store_end(service: LLMService, origin: RunOrigin, results: Sequence[CaseResult], finished: bool) -> None:
    """Store the cells and the evaluation's end (completed, or stopped when not `finished`), after
    the runs and the template version written so far: a comparison read right after it finds them."""
    assert service.store is not None and origin.evaluation_id is not None
    try:
        if service.recorder is not None:
            await service.recorder.flush()  # never raises: a failing store keeps the runs for later
        await service.store.finish_evaluation(origin.evaluation_id, "completed" if finished else "stopped",
                                              cells_of(results))
    except Exception:
        log.warning("could not store the results of evaluation %s", origin.evaluation_id, exc_info=True)


def cells_of(results: Sequence[CaseResult]) -> list[EvaluationCell]:
    """One EvaluationCell per (case, model) of `results` (any order), in the order each first appears."""
    groups: dict[tuple[str, str], list[CaseResult]] = {}
    for result in results:
        groups.setdefault((result.case_id, result.model), []).append(result)
    return [_cell(sorted(runs, key=lambda r: r.repeat)) for runs in groups.values()]


def cell_run(result: CaseResult) -> CellRun:
    """One run of a cell as the store keeps it."""
    return CellRun(
        repeat=result.repeat, run_id=result.run_id, status=result.status, reason=result.reason(),
        assertions=[CellAssertion.model_validate(a.model_dump()) for a in result.assertions],
        latency=result.latency, time_to_first_token=result.time_to_first_token,
        input_tokens=result.input_tokens, output_tokens=result.output_tokens,
        cost_usd=result.cost_usd, grading_cost_usd=result.grading_cost_usd,
    )


def _cell(runs: list[CaseResult]) -> EvaluationCell:
    first = runs[0]
    passed = sum(r.passed for r in runs)
    failure = next((r.reason() for r in runs if not r.passed), "")
    if failure and len(runs) > 1:
        failure = f"{passed}/{len(runs)} runs passed; {failure}"
    return EvaluationCell(case_id=first.case_id, model=first.model, run_id=first.run_id,
                          passed=passed == len(runs), reason=failure, runs=[cell_run(r) for r in runs])
