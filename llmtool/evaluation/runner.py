"""Run a template over a dataset × models (× repeats) through the service, a bounded number at a time.

    async for step in evaluate(service, template, dataset, ["demo:assistant"], concurrency=4, repeat=3):
        progress_bar.update(step.done, step.total)      # step.result: the run just finished

    report = await run_evaluation(service, template, dataset, models, on_progress=print)
    report = build_report(template, dataset, models, results)   # from results gathered yourself

Each cell is an ordinary run (same retries, timeouts, validation), recorded with the template's
name and content hash; with `repeat=k` each case runs k times per model (`CaseResult.repeat`). A
run that fails (provider error, timeout, bad render of one row) becomes an `error` cell; the batch
goes on. Stopping the iteration (or cancelling its task) cancels the runs in flight, which closes
their provider connections.

After its run, a cell's assertions are checked (`llmtool.evaluation.assertions`): the case's
expect_* columns, then the template's `assertions:`, then the case's assert_* columns. Text checks
run off the event loop when they can take long, stopped after `time_limit` seconds (that assertion
fails saying what ran too long). A judge is a grading run: it waits for a slot of the same
`concurrency` as the cells' runs, its cost is added to the cell's (unknown if the grader's is), and
a grader that fails or runs out of time fails its assertion with the reason, never the batch.

`concurrency` tasks take the cells one after another (never one task per cell: 5,000 cases × 16
models would be 80,000 coroutines at once).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass

from llmtool.checks import DEFAULT_TIME_LIMIT
from llmtool.errors import UsageError
from llmtool.evaluation.assertions import (
    AssertionResult,
    AssertionSpec,
    JudgeAssertion,
    RunOutcome,
    failed_reasons,
    from_expectations,
    grading_cost,
    run_assertions,
)
from llmtool.evaluation.dataset import Case, Dataset
from llmtool.evaluation.recording import store_end, store_start
from llmtool.evaluation.results import CaseResult, EvalReport
from llmtool.events import Completed, Failed, Validated
from llmtool.service import LLMService
from llmtool.service.runs import Run, new_run_id
from llmtool.store import RunOrigin
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
    repeat: int = 1,
    grader: str | None = None,
    name: str | None = None,
) -> AsyncGenerator[EvalProgress, None]:
    """Every run's result as it finishes, with counts for a progress bar.

    With a run store the evaluation is kept as a unit (template and dataset versions, models, each
    cell with its runs and assertion results) under `evaluation_id` (made up when not given), called
    `name` when given; `origin` says who runs it. `repeat`: runs per case and model. `grader`: the
    model of judge assertions that name none (default: the template's `grader:`, else
    `judge.default_grader`). `time_limit`: seconds for the check of one answer's assertions."""
    if concurrency < 1:
        raise UsageError(f"concurrency must be at least 1, got {concurrency}")
    if repeat < 1:
        raise UsageError(f"repeat must be at least 1, got {repeat}")
    model_ids = resolve_models(service, template, models)
    grader = resolve_grader(service, template, dataset, grader)
    origin = (origin or RunOrigin()).model_copy(
        update={"source": "evaluation", "evaluation_id": evaluation_id or new_run_id()}
    )
    # The login's role: its template and models, and the evaluation's size, refused before any run.
    service.check_evaluation(origin, template=template.name, models=model_ids, cases=len(dataset.cases),
                             repeats=repeat, grading_runs=grading_runs(template, dataset) * len(model_ids) * repeat)
    stored = await store_start(service, template, dataset, model_ids, origin, name=name, repeats=repeat)
    total = len(dataset.cases) * len(model_ids) * repeat
    # shared by the takers, one (case, model, repeat) after another
    cells = ((case, model, k) for case in dataset.cases for model in model_ids for k in range(1, repeat + 1))
    finished: asyncio.Queue[CaseResult] = asyncio.Queue()
    limit = asyncio.Semaphore(concurrency)
    how = _How(service, template, limit, origin, time_limit, grader)

    async def take_cells() -> None:
        for case, model, k in cells:
            finished.put_nowait(await _cell(how, case, model, k))

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
            await store_end(service, origin, results, finished=done == total)


def resolve_grader(service: LLMService, template: Template, dataset: Dataset, grader: str | None = None) -> str | None:
    """The model of judges that name none (`grader`, else the template's), checked up front with
    every judge's own model: a UsageError names an unknown one before anything runs. None when no
    grader was chosen (judges then use `judge.default_grader`)."""
    chosen = (grader or "").strip() or template.meta.grader
    named = {spec.model for spec in _judges(template.assertions) if spec.model}
    for case in dataset.cases:
        named.update(spec.model for spec in _judges(case.assertions) if spec.model)
    for model in sorted(named | ({chosen} if chosen else set())):
        service.catalog.resolve(model)
    return service.catalog.resolve(chosen).id if chosen else None


def grading_runs(template: Template, dataset: Dataset) -> int:
    """How many grading runs one model's single pass over the dataset makes (its judge assertions)."""
    per_case = len(_judges(template.assertions))
    return sum(per_case + len(_judges(case.assertions)) for case in dataset.cases)


def _judges(specs: Sequence[AssertionSpec]) -> list[JudgeAssertion]:
    return [spec for spec in specs if isinstance(spec, JudgeAssertion)]


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
    repeat: int = 1,
    grader: str | None = None,
    name: str | None = None,
    evaluation_id: str | None = None,
) -> EvalReport:
    """The whole matrix as a report; `on_progress` is called after each run (see `evaluate`)."""
    model_ids = resolve_models(service, template, models)
    results: list[CaseResult] = []
    evaluation_id = evaluation_id or new_run_id()
    steps = evaluate(service, template, dataset, model_ids, concurrency=concurrency, origin=origin,
                     evaluation_id=evaluation_id, time_limit=time_limit, repeat=repeat, grader=grader, name=name)
    try:
        async for step in steps:
            results.append(step.result)
            if on_progress is not None:
                on_progress(step)
    finally:
        await steps.aclose()
    report = build_report(template, dataset, model_ids, results, repeats=repeat)
    return report.model_copy(update={"evaluation_id": evaluation_id if service.store is not None else None,
                                     "name": name})


def build_report(
    template: Template, dataset: Dataset, models: Sequence[str], results: Sequence[CaseResult],
    *, repeats: int | None = None,
) -> EvalReport:
    """The report of results gathered from `evaluate` (in any order; some may be missing when the
    evaluation was stopped), ordered by case, then model, then repeat. `repeats`: runs per case and
    model (default: the most any result says)."""
    order = {case.id: i for i, case in enumerate(dataset.cases)}
    model_ids = list(models)
    ordered = sorted(results, key=lambda r: (order[r.case_id], model_ids.index(r.model), r.repeat))
    return EvalReport(
        template=template.name,
        template_hash=template.content_hash,
        dataset=str(dataset.path),
        models=model_ids,
        case_ids=[case.id for case in dataset.cases],
        results=ordered,
        repeats=repeats or max((r.repeat for r in ordered), default=1),
    )


@dataclass(frozen=True)
class _How:
    """What every cell of one evaluation shares."""

    service: LLMService
    template: Template
    limit: asyncio.Semaphore  # runs and grading runs at once
    origin: RunOrigin
    time_limit: float
    grader: str | None


async def _cell(how: _How, case: Case, model: str, repeat: int) -> CaseResult:
    base = _base(how.template, case, model, repeat)
    try:
        return await _run_cell(how, case, model, base)
    except Exception as error:  # a bug of ours must not take the other cells down with it
        log.exception("evaluation cell %s × %s failed unexpectedly", case.id, model)
        return CaseResult(
            **base, status="error", error=f"llmtool failed unexpectedly: {type(error).__name__}: {error}",
            error_kind="internal",
        )


def _base(template: Template, case: Case, model: str, repeat: int = 1) -> dict:
    return {
        "case_id": case.id,
        "line": case.line,
        "model": model,
        "repeat": repeat,
        "template": template.name,
        "template_hash": template.content_hash,
        "values": case.values,
    }


async def _run_cell(how: _How, case: Case, model: str, base: dict) -> CaseResult:
    expected = from_expectations(case.expect)
    specs = [*expected, *how.template.assertions, *case.assertions]
    async with how.limit:
        try:
            run = how.service.start(how.template.to_run_request(case.values, model=model), how.origin)
        except UsageError as error:
            unchecked = await run_assertions(specs, RunOutcome(text="", status="failed", error=error.message))
            return CaseResult(**base, status="error", error=error.message, error_kind=error.kind,
                              assertions=unchecked)
        try:
            await run.wait()
        except asyncio.CancelledError:
            run.cancel()
            await run.wait()  # the run has closed its provider connection before we give up
            raise
    results = await _assess(how, specs, RunOutcome.from_run(run))
    return _result(base, run, results, len(expected))


async def _assess(how: _How, specs: list[AssertionSpec], outcome: RunOutcome) -> list[AssertionResult]:
    """Every spec's result in order. Each judge waits for a slot of the evaluation's concurrency,
    like a run (the cell's own run has given its slot back)."""
    if outcome.status != "completed" or not any(isinstance(spec, JudgeAssertion) for spec in specs):
        return await run_assertions(specs, outcome, how.service, origin=how.origin, grader=how.grader,
                                    time_limit=how.time_limit)

    async def judged(spec: JudgeAssertion) -> AssertionResult:
        async with how.limit:
            [result] = await run_assertions([spec], outcome, how.service, origin=how.origin, grader=how.grader)
        return result

    others = [spec for spec in specs if not isinstance(spec, JudgeAssertion)]
    checked, graded = await asyncio.gather(
        run_assertions(others, outcome, time_limit=how.time_limit),
        asyncio.gather(*(judged(spec) for spec in specs if isinstance(spec, JudgeAssertion))),
    )
    plain, judges = iter(checked), iter(graded)
    return [next(judges) if isinstance(spec, JudgeAssertion) else next(plain) for spec in specs]


def _result(base: dict, run: Run, assertions: list[AssertionResult], expectations: int = 0) -> CaseResult:
    """The cell's result; the first `expectations` assertions are the case's expect_* columns, whose
    failures read as before ("expected to contain 'x'"), the others' as 'label: reason'."""
    terminal = run.terminal
    assert terminal is not None
    metrics = terminal.metrics
    grading = grading_cost(assertions)
    cost = metrics.cost_usd
    common = {
        **base,
        "output": terminal.text,
        "run_id": run.id,
        "latency": metrics.total_time,
        "time_to_first_token": metrics.time_to_first_token,
        "input_tokens": metrics.input_tokens,
        "output_tokens": metrics.output_tokens,
        "cost_usd": None if cost is None or grading is None else cost + grading,
        "grading_cost_usd": grading,
        "assertions": assertions,
    }
    if isinstance(terminal, Failed):
        return CaseResult(**common, status="error", error=terminal.message, error_kind=terminal.error_kind)
    if not isinstance(terminal, Completed):
        return CaseResult(**common, status="stopped", error="the run was stopped")
    validated = next((e for e in reversed(run.log) if isinstance(e, Validated)), None)
    problems = list(validated.problems) if validated is not None else []
    problems += [r.reason for r in assertions[:expectations] if not r.passed]
    problems += failed_reasons(assertions[expectations:])
    return CaseResult(**common, status="failed" if problems else "passed", problems=problems)
