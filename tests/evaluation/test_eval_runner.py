"""Running the matrix against the demo provider: mixed results, progress, bounded concurrency,
per-cell errors that do not stop the batch, cancellation, and the template version on every run."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmtool.errors import UsageError
from llmtool.evaluation import EvalReport, build_report, evaluate, load_dataset, run_evaluation
from llmtool.service import LLMService, Run, RunOrigin, RunRequest
from llmtool.settings import Settings
from llmtool.templates import Template, load_template
from tests.helpers import write_template

# demo:echo answers with the prompt itself, which makes every verdict predictable.
ECHO = """---
model: demo:echo
variables:
  word: {description: A word to say}
  divisor: {type: integer, default: 1}
validation: {forbidden_words: [forbidden]}
---
Say {{ word }} {{ 10 // divisor }}
"""
CASES = (
    "id,word,divisor,expect_contains\n"
    "cat,cat,,Say cat\n"          # passes
    "dog,dog,,Say cat\n"          # fails its expectation
    "rule,forbidden,,\n"          # fails the template's rule
    "zero,zero,0,\n"              # cannot render: an error cell
    "two,two,2,two 5\n"           # passes
)


@pytest.fixture
def template(tmp_path: Path) -> Template:
    return load_template(write_template(tmp_path, "say", ECHO))


@pytest.fixture
async def service(fast_settings: Settings):  # type: ignore[no-untyped-def]
    service = LLMService(fast_settings)
    yield service
    await service.aclose()


async def test_mixed_results_across_two_models(tmp_path: Path, template: Template, service: LLMService) -> None:
    dataset = load_dataset(_write(tmp_path, "cases.csv", CASES), template)
    report = await run_evaluation(service, template, dataset, ["demo:echo", "demo:assistant"], concurrency=3)

    echo = {r.case_id: r for r in report.results if r.model == "demo:echo"}
    assert {k: r.status for k, r in echo.items()} == {
        "cat": "passed", "dog": "failed", "rule": "failed", "zero": "error", "two": "passed",
    }
    assert echo["dog"].problems == ["expected to contain 'Say cat'"]
    assert echo["rule"].problems == ["forbidden word used: forbidden"]
    assert "ZeroDivisionError" in (echo["zero"].error or "") and echo["zero"].run_id is None
    assert echo["cat"].output == "Say cat 10"
    assert echo["cat"].latency is not None and echo["cat"].output_tokens and echo["cat"].cost_usd == 0

    assert [(r.case_id, r.model) for r in report.results][:2] == [("cat", "demo:echo"), ("cat", "demo:assistant")]
    [echo_summary, assistant_summary] = report.summary()
    assert (echo_summary.passed, echo_summary.failed, echo_summary.errors) == (2, 2, 1)
    assert assistant_summary.cases == 5 and assistant_summary.errors == 1
    assert not report.ok
    assert {r.case_id for r in report.failures()} >= {"dog", "rule", "zero"}


async def test_every_run_records_the_template_version(
    tmp_path: Path, template: Template, service: LLMService
) -> None:
    dataset = load_dataset(_write(tmp_path, "cases.csv", CASES), template)
    report = await run_evaluation(service, template, dataset, ["demo:echo"])
    runs = service.runs()
    assert len(runs) == 4  # the unrenderable case never started a run
    assert {(run.request.template, run.request.template_hash) for run in runs} == {
        ("say", template.content_hash)
    }
    assert {(r.template, r.template_hash) for r in report.results} == {("say", template.content_hash)}
    assert {r.run_id for r in report.results if r.run_id} == {run.id for run in runs}


async def test_progress_counts_every_cell(tmp_path: Path, template: Template, service: LLMService) -> None:
    dataset = load_dataset(_write(tmp_path, "cases.csv", CASES), template)
    steps = [step async for step in evaluate(service, template, dataset, ["demo:echo", "demo:assistant"])]
    assert [s.done for s in steps] == list(range(1, 11))
    assert {s.total for s in steps} == {10}
    assert steps[-1].passed == sum(s.result.passed for s in steps)
    assert len({(s.result.case_id, s.result.model) for s in steps}) == 10
    report = build_report(template, dataset, ["demo:echo", "demo:assistant"], [s.result for s in steps])
    assert report.matrix()[1][0][0] == "cat" and len(report.matrix()[1]) == 5


class CountingService(LLMService):
    """Records how many runs were in flight each time one started."""

    in_flight: list[int]

    def start(self, request: RunRequest | dict, origin: RunOrigin | None = None, run_id: str | None = None) -> Run:
        run = super().start(request, origin, run_id)
        self.in_flight = [*getattr(self, "in_flight", []), sum(not r.done for r in self.runs())]
        return run


@pytest.mark.parametrize("concurrency", [1, 2])
async def test_concurrency_is_bounded(
    tmp_path: Path, template: Template, fast_settings: Settings, concurrency: int
) -> None:
    rows = "".join(f"w{i},w{i},,\n" for i in range(6))
    dataset = load_dataset(_write(tmp_path, "many.csv", "id,word,divisor,expect_contains\n" + rows), template)
    service = CountingService(fast_settings)
    try:
        report = await run_evaluation(service, template, dataset, ["demo:echo"], concurrency=concurrency)
    finally:
        await service.aclose()
    assert report.ok
    assert max(service.in_flight) == concurrency
    assert len(service.in_flight) == 6


async def test_stopping_the_iteration_cancels_runs_in_flight(
    tmp_path: Path, template: Template, service: LLMService
) -> None:
    rows = "".join(f"w{i},w{i},,\n" for i in range(6))
    dataset = load_dataset(_write(tmp_path, "many.csv", "id,word,divisor,expect_contains\n" + rows), template)
    steps = evaluate(service, template, dataset, ["demo:echo"], concurrency=2)
    first = await anext(steps)
    await steps.aclose()
    assert first.done == 1
    assert len(service.runs()) < 6
    assert all(run.done for run in service.runs())


async def test_unknown_model_is_refused_before_anything_runs(
    tmp_path: Path, template: Template, service: LLMService
) -> None:
    dataset = load_dataset(_write(tmp_path, "cases.csv", CASES), template)
    with pytest.raises(UsageError, match="unknown model 'nope' for provider 'demo'"):
        await run_evaluation(service, template, dataset, ["demo:echo", "demo:nope"])
    assert service.runs() == []


async def test_default_model_is_the_templates(tmp_path: Path, template: Template, service: LLMService) -> None:
    dataset = load_dataset(_write(tmp_path, "cases.csv", "word\ncat\n"), template)
    report = await run_evaluation(service, template, dataset)
    assert report.models == ["demo:echo"]


async def test_provider_error_is_reported_in_its_cell(tmp_path: Path, template: Template) -> None:
    loopback = pytest.importorskip("llmtool.loopback")
    with loopback.LoopbackServer() as server:
        server.enqueue(loopback.Scenario(kind="http_error", status=400))
        settings = Settings(
            endpoints={"local": {"base_url": server.openai_base_url, "models": ["m"]}},
            retry={"initial_delay": 0.01, "max_delay": 0.05, "jitter": 0.0},
        )
        service = LLMService(settings)
        try:
            rows = "id,word,divisor,expect_contains\na,cat,,\nb,dog,,\nc,eel,,\n"
            dataset = load_dataset(_write(tmp_path, "cases.csv", rows), template)
            report = await run_evaluation(service, template, dataset, ["local:m"], concurrency=1)
        finally:
            await service.aclose()
    statuses = [r.status for r in report.results]
    assert statuses == ["error", "passed", "passed"]
    error = report.results[0]
    assert error.error_kind == "request_rejected" and "400" in (error.error or "")
    assert isinstance(report, EvalReport)


def _write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


async def test_cells_are_taken_by_as_many_tasks_as_the_concurrency(
    tmp_path: Path, template: Template, service: LLMService
) -> None:
    """One task per cell was 80,000 coroutines for 5,000 cases × 16 models; now `concurrency` take turns."""
    import asyncio

    rows = "".join(f"w{i},w{i},,Say w{i}\n" for i in range(300))
    dataset = load_dataset(_write(tmp_path, "many.csv", "id,word,divisor,expect_contains\n" + rows), template)
    tasks_seen = []
    passed = 0
    async for step in evaluate(service, template, dataset, ["demo:echo"], concurrency=3):
        tasks_seen.append(len(asyncio.all_tasks()))
        passed = step.passed
    assert passed == 300 and len(tasks_seen) == 300
    assert max(tasks_seen) < 30


async def test_a_slow_expectation_fails_its_cell_with_the_reason(
    tmp_path: Path, template: Template, service: LLMService
) -> None:
    from llmtool.checks import CheckPool, set_pool

    pool = CheckPool(size=1)
    previous = set_pool(pool)
    try:
        long_word = "a" * 20_000  # a long answer: its expectations are checked in the pool
        dataset = load_dataset(_write(tmp_path, "one.csv", f"id,word,expect_regex\nlong,{long_word},(a+)+$\n"), template)
        report = await run_evaluation(service, template, dataset, ["demo:echo"], time_limit=0.000_001)
    finally:
        set_pool(previous)
        await pool.aclose()
    [cell] = report.results
    assert cell.status == "failed"
    [problem] = cell.problems
    assert problem.startswith("the check of ") and problem.endswith(" took longer than 1e-06 s and was stopped")
