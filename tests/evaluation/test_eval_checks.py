"""Assertions through the real runner: every kind from a dataset row and from a template, judges on
demo:grader and on the loopback server (a grader that fails or times out marks its cell with the
reason, the batch goes on), grading cost in the cell's cost, judges under the evaluation's
concurrency, the evaluation's size as the limits see it, and cells stored with their assertions."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest

from llmtool.evaluation import CaseResult, load_dataset, run_evaluation
from llmtool.loopback import LoopbackServer, Scenario
from llmtool.service import LLMService, Run, RunOrigin, RunRequest
from llmtool.settings import Settings
from llmtool.store import open_store
from llmtool.store.evaluation_queries import EvaluationQueries
from llmtool.templates import Template, load_template
from tests.helpers import write_template
from tests.providers.conftest import service_for

# demo:echo answers with the prompt itself: "Say <word>"; its runs cost $0 and are measured.
ECHO = "---\nmodel: demo:echo\nvariables:\n  word: {}\n---\nSay {{ word }}\n"


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def template_with(directory: Path, front: str = "", name: str = "say") -> Template:
    return load_template(write_template(directory, name, ECHO.replace("---\nSay", f"{front}---\nSay")))


@pytest.fixture
async def service(fast_settings: Settings) -> AsyncIterator[LLMService]:
    service = LLMService(fast_settings)
    yield service
    await service.aclose()


def outcomes(result: CaseResult) -> list[tuple[str, bool, float]]:
    return [(a.type, a.passed, a.score) for a in result.assertions]


# Each row asserts one kind: one passing, one failing (the echo is "Say <word>").
ROWS = [
    {"id": "latency", "word": "a", "assert_latency_s": 60, "assert_first_token_s": 30},
    {"id": "cost", "word": "a", "assert_cost_usd": 0},
    {"id": "tokens", "word": "a b c d e f", "assert_tokens": 2},
    {"id": "equals", "word": "cat", "assert_equals": "Say cat"},
    {"id": "equals-not", "word": "cat", "assert_equals": "cat"},
    {"id": "any", "word": "cat", "assert_contains_any": "dog|cat"},
    {"id": "all", "word": "cat", "assert_contains_all": ["Say", "dog"]},
    {"id": "none", "word": "cat", "assert_not_contains": "dog|cat"},
    {"id": "judge", "word": "Paris", "assert_judge": 'Names "Paris"'},
    {"id": "judge-not", "word": "Rome", "assert_judge": 'Names "Paris" and "Rome"'},
    {"id": "expect", "word": "cat", "expect_contains": "dog", "expect_json": True},
]


async def test_each_kind_from_a_dataset_row(tmp_path: Path, service: LLMService) -> None:
    template = template_with(tmp_path)
    dataset = load_dataset(write(tmp_path, "cases.jsonl", "".join(json.dumps(r) + "\n" for r in ROWS)), template)
    report = await run_evaluation(service, template, dataset, ["demo:echo"], concurrency=4)
    cells = {r.case_id: r for r in report.results}
    assert {case: outcomes(cell) for case, cell in cells.items()} == {
        "latency": [("latency", True, 1.0)],
        "cost": [("cost", True, 1.0)],
        "tokens": [("tokens", False, pytest.approx(2 / 7))],
        "equals": [("equals", True, 1.0)],
        "equals-not": [("equals", False, 0.0)],
        "any": [("contains_any", True, 1.0)],
        "all": [("contains_all", False, 0.5)],
        "none": [("not_contains", False, 0.5)],
        "judge": [("judge", True, 1.0)],
        "judge-not": [("judge", False, 0.5)],
        "expect": [("contains", False, 0.0), ("json", False, 0.0)],
    }
    assert {case for case, cell in cells.items() if cell.passed} == {"latency", "cost", "equals", "any", "judge"}
    # the cell says which assertion failed and why: expectations as before, the others 'label: reason'
    assert cells["tokens"].problems == ["output tokens ≤ 2: 7 output tokens > 2"]
    assert cells["none"].problems == ["contains none of 'dog', 'cat': contains 'cat', which it must not"]
    assert cells["judge-not"].problems == [
        'judge \'Names "Paris" and "Rome"\': the answer lacks "Paris" (1 of 2 quoted terms found)']
    assert cells["expect"].problems[0] == "expected to contain 'dog'"
    assert cells["expect"].problems[1].startswith("expected JSON: ")
    # the judge is a grading run of demo:grader, stored beside the cell's run, costing nothing
    [judged] = cells["judge"].assertions
    assert judged.model == "demo:grader" and judged.run_id is not None and judged.cost_usd == 0
    assert cells["judge"].grading_cost_usd == 0 and cells["judge"].cost_usd == 0


async def test_template_assertions_apply_to_every_case(tmp_path: Path, service: LLMService) -> None:
    template = template_with(tmp_path, (
        "assertions:\n"
        "  - {type: not_contains, values: [forbidden]}\n"
        "  - {type: judge, rubric: 'Says \"Say\"'}\n"
        "  - {type: tokens, max: 3}\n"
    ))
    rows = "id,word,expect_contains,assert_equals\nok,cat,cat,Say cat\nbad,forbidden,,\nlong,a b c,,\n"
    dataset = load_dataset(write(tmp_path, "cases.csv", rows), template)
    report = await run_evaluation(service, template, dataset, ["demo:echo"])
    ok, bad, long = report.results
    # in order: the case's expectations, the template's assertions, the case's assert_* columns
    assert [a.type for a in ok.assertions] == ["contains", "not_contains", "judge", "tokens", "equals"]
    assert ok.passed and all(a.passed for a in ok.assertions)
    assert bad.problems == ["contains none of 'forbidden': contains 'forbidden', which it must not"]
    assert long.problems == ["output tokens ≤ 3: 4 output tokens > 3"]
    assert [a.label for a in bad.failed_assertions()] == ["contains none of 'forbidden'"]


async def test_an_unknown_grader_is_refused_before_anything_runs(tmp_path: Path, service: LLMService) -> None:
    from llmtool.errors import UsageError

    template = template_with(tmp_path, "grader: demo:nobody\n")
    dataset = load_dataset(write(tmp_path, "cases.csv", "word,assert_judge\ncat,Polite\n"), template)
    with pytest.raises(UsageError, match="unknown model 'nobody'"):
        await run_evaluation(service, template, dataset, ["demo:echo"])
    assert service.runs() == []


class CountingService(LLMService):
    """Records how many runs (answers and gradings) were in flight each time one started."""

    in_flight: list[int]

    def start(self, request: RunRequest | dict, origin: RunOrigin | None = None, run_id: str | None = None) -> Run:
        run = super().start(request, origin, run_id)
        self.in_flight = [*getattr(self, "in_flight", []), sum(not r.done for r in self.runs())]
        return run


async def test_judges_wait_for_a_slot_like_runs(tmp_path: Path, fast_settings: Settings) -> None:
    template = template_with(tmp_path, "assertions:\n  - {type: judge, rubric: one}\n  - {type: judge, rubric: two}\n")
    rows = "".join(f"w{i}\n" for i in range(6))
    dataset = load_dataset(write(tmp_path, "cases.csv", "word\n" + rows), template)
    service = CountingService(fast_settings)
    try:
        report = await run_evaluation(service, template, dataset, ["demo:echo"], concurrency=2)
    finally:
        await service.aclose()
    assert report.ok
    assert len(service.in_flight) == 6 + 12  # every answer and both of its gradings
    assert max(service.in_flight) == 2


class SizingService(LLMService):
    """Records what the limits are asked about each evaluation."""

    sizes: list[dict[str, Any]]

    def check_evaluation(self, origin: RunOrigin | None, *, template: str, models: Iterable[str], cases: int,
                         repeats: int = 1, grading_runs: int = 0) -> None:
        self.sizes = [*getattr(self, "sizes", []), {"models": list(models), "cases": cases, "repeats": repeats,
                                                     "grading_runs": grading_runs}]
        super().check_evaluation(origin, template=template, models=models, cases=cases, repeats=repeats,
                                 grading_runs=grading_runs)


async def test_the_limits_count_repeats_and_grading_runs(tmp_path: Path, fast_settings: Settings) -> None:
    template = template_with(tmp_path, "assertions:\n  - {type: judge, rubric: always}\n")
    rows = "word,assert_judge\na,Polite\nb,\nc,Short\n"  # 3 template judges + 2 of the rows, per model and run
    dataset = load_dataset(write(tmp_path, "cases.csv", rows), template)
    service = SizingService(fast_settings)
    try:
        report = await run_evaluation(service, template, dataset, ["demo:echo", "demo:assistant"], repeat=2)
    finally:
        await service.aclose()
    assert service.sizes == [{"models": ["demo:echo", "demo:assistant"], "cases": 3, "repeats": 2,
                              "grading_runs": 5 * 2 * 2}]
    assert len(report.results) == 3 * 2 * 2
    graded = [a for r in report.results for a in r.assertions if a.type == "judge"]
    assert len(graded) == 20 and len({a.run_id for a in graded}) == 20


async def test_cells_are_stored_with_their_assertions(tmp_path: Path, fast_settings: Settings) -> None:
    template = template_with(tmp_path, "assertions:\n  - {type: judge, rubric: 'Says \"Say\"'}\n")
    dataset = load_dataset(write(tmp_path, "cases.csv", "id,word,expect_contains\na,cat,cat\nb,dog,cat\n"), template)
    service = LLMService(fast_settings)
    await service.attach_store(await open_store(f"sqlite+aiosqlite:///{tmp_path / 'runs.db'}"))
    try:
        report = await run_evaluation(service, template, dataset, ["demo:echo"], name="v1")
        assert service.store is not None and report.evaluation_id is not None and report.name == "v1"
        stored = await service.store.get_evaluation(report.evaluation_id)
        cells = await EvaluationQueries.of(service.store).cells(report.evaluation_id)
    finally:
        await service.aclose()
    assert stored is not None and (stored.name, stored.repeats, stored.status) == ("v1", 1, "completed")
    by_case = {c.case_id: c for c in stored.cells}
    assert (by_case["a"].passed, by_case["b"].passed, by_case["b"].reason) == (True, False, "expected to contain 'cat'")
    [run_b] = by_case["b"].runs
    assert (run_b.status, run_b.run_id, run_b.repeat) == ("failed", report.results[1].run_id, 1)
    assert [(a.type, a.passed, a.reason) for a in run_b.assertions] == [
        ("contains", False, "expected to contain 'cat'"),
        ("judge", True, "the answer contains all 1 quoted terms of the rubric"),
    ]
    assert run_b.assertions[1].run_id == report.results[1].assertions[1].run_id
    # the queries a baseline and the Evaluate tab read: the same assertions, the run's measures
    stored_b = next(c for c in cells if c.case_id == "b")
    assert stored_b.assertions == run_b.assertions and stored_b.repeats == 1
    assert stored_b.latency == report.results[1].latency and stored_b.cost_usd == 0


# -- judges on the loopback server -------------------------------------------------------------------
@pytest.fixture
async def wired(loopback: LoopbackServer) -> AsyncIterator[LLMService]:
    """Graders on the loopback: `failing:grader` always answers 401, `stalling:grader` never sends a
    token; openai:gpt-4.1-mini is priced, an OpenAI model models.toml does not know is not."""
    loopback.reset()
    service = service_for(loopback, endpoints={
        "failing": {"base_url": f"{loopback.preset_url('unauthorized')}/v1", "models": ["grader"]},
        "stalling": {"base_url": f"{loopback.preset_url('stall_before_first_token')}/v1", "models": ["grader"]},
    }, demo={"first_token_delay": 0.0, "tokens_per_second": 100_000})
    yield service
    await service.aclose()


def verdict(passed: bool, score: float, reason: str) -> Scenario:
    return Scenario(text=json.dumps({"pass": passed, "score": score, "reason": reason}), tokens_per_second=10_000)


async def test_a_grader_that_fails_or_times_out_marks_its_cell_and_the_batch_goes_on(
    tmp_path: Path, wired: LLMService,
) -> None:
    template = template_with(tmp_path, (
        "assertions:\n"
        "  - {type: judge, rubric: r1, model: 'failing:grader'}\n"
        "  - {type: judge, rubric: r2, model: 'stalling:grader', timeout_s: 0.3}\n"
        "  - {type: contains, value: Say}\n"
    ))
    dataset = load_dataset(write(tmp_path, "cases.csv", "word\na\nb\nc\n"), template)
    report = await run_evaluation(wired, template, dataset, ["demo:echo"], concurrency=2)
    assert [r.case_id for r in report.results] == ["#1", "#2", "#3"]
    for cell in report.results:
        assert cell.status == "failed" and cell.error is None
        failing, stalling = cell.problems
        assert failing.startswith("judge 'r1': the grader failing:grader failed: ")
        assert stalling == "judge 'r2': the grader stalling:grader failed: the run took longer than its 0.3 s limit"
        assert [a.passed for a in cell.assertions] == [False, False, True]
        assert all(a.run_id is not None for a in cell.assertions[:2])
        assert cell.cost_usd == 0 and cell.grading_cost_usd == 0  # an endpoint's models are free


async def test_grading_cost_is_part_of_the_cells_cost(tmp_path: Path, loopback: LoopbackServer,
                                                     wired: LLMService) -> None:
    priced = template_with(tmp_path, "grader: openai:gpt-4.1-mini\n", name="priced")
    unpriced = template_with(tmp_path, "grader: openai:a-model-without-a-price\n", name="unpriced")
    rows = "word,assert_judge\nParis,Names the city\n"
    loopback.enqueue(verdict(True, 0.9, "names it"), verdict(False, 0.2, "vague"))
    [paid] = (await run_evaluation(wired, priced, load_dataset(write(tmp_path, "p.csv", rows), priced))).results
    [unknown] = (await run_evaluation(wired, unpriced, load_dataset(write(tmp_path, "u.csv", rows), unpriced))).results
    [graded] = paid.assertions
    assert (graded.passed, graded.score, graded.reason, graded.model) == (True, 0.9, "names it", "openai:gpt-4.1-mini")
    assert graded.cost_usd is not None and graded.cost_usd > 0
    assert paid.grading_cost_usd == graded.cost_usd and paid.cost_usd == graded.cost_usd  # the answer cost $0
    assert unknown.problems == ["judge 'Names the city': vague"]
    assert unknown.grading_cost_usd is None and unknown.cost_usd is None  # a grader of unknown cost


def test_stored_assertions_have_the_fields_of_results() -> None:
    from llmtool.evaluation.assertions import AssertionResult
    from llmtool.store import CellAssertion

    assert list(CellAssertion.model_fields) == list(AssertionResult.model_fields)
