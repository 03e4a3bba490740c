"""Run a template over a dataset × models through the service, a bounded number at a time.

    async for step in evaluate(service, template, dataset, ["demo:assistant"], concurrency=4):
        progress_bar.update(step.done, step.total)      # step.result: the cell just finished

    report = await run_evaluation(service, template, dataset, models, on_progress=print)
    report = build_report(template, dataset, models, results)   # from results gathered yourself

Each cell is an ordinary run (same retries, timeouts, validation), recorded with the template's
name and content hash. A run that fails (provider error, timeout, bad render of one row) becomes
an `error` cell; the batch goes on. Stopping the iteration (or cancelling its task) cancels the
runs in flight, which closes their provider connections.

`concurrency` tasks take the cells one after another (never one task per cell: 5,000 cases × 16
models would be 80,000 coroutines at once). A case's expectations are checked with
`llmtool.checks.check_expectations`: off the event loop when they can take long, stopped after
`time_limit` seconds (the cell fails and says which expectation ran too long).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass

from llmtool.checks import DEFAULT_TIME_LIMIT, check_expectations
from llmtool.errors import UsageError
from llmtool.evaluation.dataset import Case, Dataset
from llmtool.evaluation.results import CaseResult, EvalReport
from llmtool.events import Completed, Failed, Validated
from llmtool.service import LLMService
from llmtool.service.runs import Run, new_run_id
from llmtool.store import EvaluationCell, EvaluationRecord, RunOrigin
from llmtool.templates.template import Template

DEFAULT_CONCURRENCY = 4
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalProgress:
    done: int
    total: int
    result: CaseResult  # the cell that just finished
    passed: int  # cells passed so far


def resolve_models(service: LLMService, template: Template, models: Sequence[str] = ()) -> list[str]:
    """The models to run, checked up front (a UsageError names a bad one before anything runs).
    None given: the template's model, else the service default."""
    chosen = list(dict.fromkeys(m.strip() for m in models if m.strip()))
    if not chosen:
        chosen = [template.model or service.default_model()]
    return [service.catalog.resolve(m).id for m in chosen]


async def evaluate(
    service: LLMService,
    template: Template,
    dataset: Dataset,
    models: Sequence[str] = (),
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    origin: RunOrigin | None = None,
    evaluation_id: str | None = None,
    time_limit: float = DEFAULT_TIME_LIMIT,
) -> AsyncGenerator[EvalProgress, None]:
    """Every cell's result as it finishes, with counts for a progress bar.

    With a run store the evaluation is kept as a unit (template and dataset versions, models, each
    cell's run) under `evaluation_id` (made up when not given); `origin` says who runs it.
    `time_limit`: seconds for the check of one answer's expectations."""
    if concurrency < 1:
        raise UsageError(f"concurrency must be at least 1, got {concurrency}")
    model_ids = resolve_models(service, template, models)
    origin = (origin or RunOrigin()).model_copy(
        update={"source": "evaluation", "evaluation_id": evaluation_id or new_run_id()}
    )
    # The login's role: its template and models, and the evaluation's size, refused before any run.
    service.check_evaluation(origin, template=template.name, models=model_ids, cases=len(dataset.cases))
    stored = await _store_start(service, template, dataset, model_ids, origin)
    total = len(dataset.cases) * len(model_ids)
    cells = ((case, model) for case in dataset.cases for model in model_ids)  # shared by the takers
    finished: asyncio.Queue[CaseResult] = asyncio.Queue()
    limit = asyncio.Semaphore(concurrency)

    async def take_cells() -> None:
        for case, model in cells:
            finished.put_nowait(await _cell(service, template, case, model, limit, origin, time_limit))

    takers = [asyncio.create_task(take_cells(), name=f"eval-{i + 1}") for i in range(min(concurrency, total))]
    done = passed = 0
    results: list[CaseResult] = []
    try:
        while done < total:
            result = await _next_result(finished, takers)
            results.append(result)
            done += 1
            passed += result.passed
            yield EvalProgress(done=done, total=total, result=result, passed=passed)
    finally:
        for task in takers:
            task.cancel()
        await asyncio.gather(*takers, return_exceptions=True)
        if stored:
            await _store_end(service, origin, results, finished=done == total)


async def _next_result(finished: asyncio.Queue[CaseResult], takers: list[asyncio.Task[None]]) -> CaseResult:
    """The next cell to finish; a taker that died of a bug of ours is raised, not waited for."""
    if not finished.empty():
        return finished.get_nowait()
    getting = asyncio.ensure_future(finished.get())
    try:
        while True:
            running = [t for t in takers if not t.done()]
            await asyncio.wait([getting, *running], return_when=asyncio.FIRST_COMPLETED)
            if getting.done():
                return getting.result()
            for task in takers:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            if not running:
                raise RuntimeError("the evaluation's cells ended without a result")
    finally:
        if not getting.done():
            getting.cancel()


async def _store_start(service: LLMService, template: Template, dataset: Dataset, models: list[str],
                       origin: RunOrigin) -> bool:
    if service.store is None or origin.evaluation_id is None:
        return False
    try:
        await service.store.add_evaluation(EvaluationRecord(
            id=origin.evaluation_id, user=origin.user, template=template.name,
            template_hash=template.content_hash, dataset=dataset.path.name, dataset_hash=dataset.content_hash,
            models=models,
        ))
    except Exception:  # the evaluation still runs; its runs are kept one by one
        log.warning("could not store evaluation %s", origin.evaluation_id, exc_info=True)
        return False
    return True


async def _store_end(service: LLMService, origin: RunOrigin, results: list[CaseResult], finished: bool) -> None:
    assert service.store is not None and origin.evaluation_id is not None
    cells = [
        EvaluationCell(case_id=r.case_id, model=r.model, run_id=r.run_id, passed=r.passed, reason=r.reason())
        for r in results
    ]
    try:
        await service.store.finish_evaluation(origin.evaluation_id, "completed" if finished else "stopped", cells)
    except Exception:
        log.warning("could not store the results of evaluation %s", origin.evaluation_id, exc_info=True)


async def run_evaluation(
    service: LLMService,
    template: Template,
    dataset: Dataset,
    models: Sequence[str] = (),
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_progress: Callable[[EvalProgress], None] | None = None,
    origin: RunOrigin | None = None,
    time_limit: float = DEFAULT_TIME_LIMIT,
) -> EvalReport:
    """The whole matrix as a report; `on_progress` is called after each cell."""
    model_ids = resolve_models(service, template, models)
    results: list[CaseResult] = []
    evaluation_id = new_run_id()
    steps = evaluate(service, template, dataset, model_ids, concurrency=concurrency, origin=origin,
                     evaluation_id=evaluation_id, time_limit=time_limit)
    try:
        async for step in steps:
            results.append(step.result)
            if on_progress is not None:
                on_progress(step)
    finally:
        await steps.aclose()
    report = build_report(template, dataset, model_ids, results)
    return report.model_copy(update={"evaluation_id": evaluation_id if service.store is not None else None})


def build_report(
    template: Template, dataset: Dataset, models: Sequence[str], results: Sequence[CaseResult]
) -> EvalReport:
    """The report of results gathered from `evaluate` (in any order; some may be missing when the
    evaluation was stopped), ordered by case, then model."""
    order = {case.id: i for i, case in enumerate(dataset.cases)}
    model_ids = list(models)
    ordered = sorted(results, key=lambda r: (order[r.case_id], model_ids.index(r.model)))
    return EvalReport(
        template=template.name,
        template_hash=template.content_hash,
        dataset=str(dataset.path),
        models=model_ids,
        case_ids=[case.id for case in dataset.cases],
        results=ordered,
    )


async def _cell(
    service: LLMService, template: Template, case: Case, model: str, limit: asyncio.Semaphore, origin: RunOrigin,
    time_limit: float = DEFAULT_TIME_LIMIT,
) -> CaseResult:
    base = _base(template, case, model)
    try:
        return await _run_cell(service, template, case, model, limit, base, origin, time_limit)
    except Exception as error:  # a bug of ours must not take the other cells down with it
        log.exception("evaluation cell %s × %s failed unexpectedly", case.id, model)
        return CaseResult(
            **base, status="error", error=f"llmtool failed unexpectedly: {type(error).__name__}: {error}",
            error_kind="internal",
        )


def _base(template: Template, case: Case, model: str) -> dict:
    return {
        "case_id": case.id,
        "line": case.line,
        "model": model,
        "template": template.name,
        "template_hash": template.content_hash,
        "values": case.values,
    }


async def _run_cell(
    service: LLMService, template: Template, case: Case, model: str, limit: asyncio.Semaphore, base: dict,
    origin: RunOrigin, time_limit: float = DEFAULT_TIME_LIMIT,
) -> CaseResult:
    async with limit:
        try:
            run = service.start(template.to_run_request(case.values, model=model), origin)
        except UsageError as error:
            return CaseResult(**base, status="error", error=error.message, error_kind=error.kind)
        try:
            await run.wait()
        except asyncio.CancelledError:
            run.cancel()
            await run.wait()  # the run has closed its provider connection before we give up
            raise
    terminal = run.terminal
    expected = []
    if isinstance(terminal, Completed):
        expected = await check_expectations(case.expect, terminal.text, time_limit=time_limit)
    return _result(base, case, run, expected)


def _result(base: dict, case: Case, run: Run, expected: list[str] | None = None) -> CaseResult:
    terminal = run.terminal
    assert terminal is not None
    metrics = terminal.metrics
    common = {
        **base,
        "output": terminal.text,
        "run_id": run.id,
        "latency": metrics.total_time,
        "time_to_first_token": metrics.time_to_first_token,
        "input_tokens": metrics.input_tokens,
        "output_tokens": metrics.output_tokens,
        "cost_usd": metrics.cost_usd,
    }
    if isinstance(terminal, Failed):
        return CaseResult(**common, status="error", error=terminal.message, error_kind=terminal.error_kind)
    if not isinstance(terminal, Completed):
        return CaseResult(**common, status="stopped", error="the run was stopped")
    validated = next((e for e in reversed(run.log) if isinstance(e, Validated)), None)
    problems = list(validated.problems) if validated is not None else []
    problems += case.expect.check(terminal.text) if expected is None else expected
    return CaseResult(**common, status="failed" if problems else "passed", problems=problems)
