"""Repeats through the real runner: k runs per case and model, a flaky prompt (a loopback model whose
answers alternate) shows up as a pass rate and a spread per cell, in the report, its matrix and the
stored cell."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from llmtool.errors import UsageError
from llmtool.evaluation import evaluate, load_dataset, run_evaluation
from llmtool.loopback import LoopbackServer, Scenario
from llmtool.service import LLMService
from llmtool.settings import Settings
from llmtool.store import open_store
from llmtool.store.evaluation_queries import EvaluationQueries
from llmtool.templates import Template, load_template
from tests.helpers import write_template

ASK = "---\nvariables:\n  question: {}\n---\n{{ question }}\n"


@pytest.fixture
def template(tmp_path: Path) -> Template:
    return load_template(write_template(tmp_path, "ask", ASK))


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
async def service(loopback: LoopbackServer, tmp_path: Path) -> AsyncIterator[LLMService]:
    loopback.reset()
    settings = Settings(
        endpoints={"local": {"base_url": loopback.openai_base_url, "models": ["flaky"]}},
        retry={"initial_delay": 0.01, "max_delay": 0.05, "jitter": 0.0},
        demo={"first_token_delay": 0.0, "tokens_per_second": 100_000},
    )
    service = LLMService(settings)
    await service.attach_store(await open_store(f"sqlite+aiosqlite:///{tmp_path / 'runs.db'}"))
    yield service
    await service.aclose()


def answer(text: str) -> Scenario:
    return Scenario(text=text, tokens_per_second=10_000)


async def test_a_flaky_prompt_shows_its_pass_rate_and_spread(
    tmp_path: Path, template: Template, loopback: LoopbackServer, service: LLMService,
) -> None:
    # one run at a time, so the answers come in the order queued: steady passes 3 of 3, flaky 2 of 3
    loopback.enqueue(*(answer(text) for text in ("Yes.", "Yes.", "Yes.", "Yes.", "No.", "Yes.")))
    rows = "id,question,expect_contains\nsteady,Ready?,Yes\nflaky,Sure?,Yes\n"
    dataset = load_dataset(write(tmp_path, "cases.csv", rows), template)
    report = await run_evaluation(service, template, dataset, ["local:flaky"], concurrency=1, repeat=3)

    assert [(r.case_id, r.repeat, r.status) for r in report.results] == [
        ("steady", 1, "passed"), ("steady", 2, "passed"), ("steady", 3, "passed"),
        ("flaky", 1, "passed"), ("flaky", 2, "failed"), ("flaky", 3, "passed"),
    ]
    steady, flaky = report.repeated()
    assert (steady.verdict, steady.pass_rate, steady.runs) == ("passed", 1.0, 3)
    assert (flaky.verdict, flaky.passed, flaky.runs, flaky.failures) == ("flaky", 2, 3, {"expected to contain 'Yes'": 1})
    assert flaky.latency is not None and flaky.latency.count == 3 and flaky.latency.min <= flaky.latency.max
    assert not report.ok and report.repeats == 3
    [summary] = report.summary()
    assert (summary.cases, summary.runs, summary.passed, summary.failed, summary.flaky) == (2, 6, 5, 1, 1)
    assert summary.pass_rate == pytest.approx(5 / 6) and summary.latency is not None
    headers, rows_shown = report.matrix(failures_only=True)
    assert headers == ["case", "local:flaky"] and rows_shown == [["flaky", "2/3 ⚠ expected to contain 'Yes'"]]

    # stored: one cell per case and model, failing unless every run passed, each run kept
    assert service.store is not None and report.evaluation_id is not None
    stored = await service.store.get_evaluation(report.evaluation_id)
    assert stored is not None and stored.repeats == 3
    cells = {c.case_id: c for c in stored.cells}
    assert (cells["steady"].passed, cells["flaky"].passed) == (True, False)
    assert cells["flaky"].reason == "2/3 runs passed; expected to contain 'Yes'"
    assert [(r.repeat, r.status) for r in cells["flaky"].runs] == [(1, "passed"), (2, "failed"), (3, "passed")]
    assert cells["flaky"].run_id == report.results[3].run_id
    [_, queried] = sorted(await EvaluationQueries.of(service.store).cells(report.evaluation_id),
                          key=lambda c: c.case_id != "steady")
    assert queried.repeats == 3 and queried.latency == pytest.approx(flaky.latency.median)


async def test_every_repeat_is_a_run_of_its_own(tmp_path: Path, template: Template, service: LLMService) -> None:
    dataset = load_dataset(write(tmp_path, "cases.csv", "question\none\ntwo\n"), template)
    steps = [s async for s in evaluate(service, template, dataset, ["demo:echo", "demo:assistant"], repeat=2)]
    assert [s.done for s in steps] == list(range(1, 9)) and {s.total for s in steps} == {8}
    assert sorted((s.result.case_id, s.result.model, s.result.repeat) for s in steps) == sorted(
        (case, model, k) for case in ("#1", "#2") for model in ("demo:echo", "demo:assistant") for k in (1, 2))
    assert len({s.result.run_id for s in steps}) == 8
    with pytest.raises(UsageError, match="repeat must be at least 1, got 0"):
        await anext(evaluate(service, template, dataset, ["demo:echo"], repeat=0))
