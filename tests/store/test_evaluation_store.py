"""What migration 0006 keeps of an evaluation, on SQLite and PostgreSQL: its name and repeats, each
cell's runs with their assertion results and measures, read back by `get_evaluation` and by the
queries a baseline and the Evaluate tab use (measures from the runs, a baseline by name)."""

from __future__ import annotations

import pytest

from llmtool.events import Metrics
from llmtool.store import CellAssertion, CellRun, EvaluationCell, EvaluationRecord, RunRecord
from llmtool.store.evaluation_queries import EvaluationQueries
from llmtool.store.sql import SqlRunStore

JUDGED = CellAssertion(type="judge", label="judge 'polite'", passed=False, score=0.4, reason="curt",
                       run_id="g1", model="demo:grader", cost_usd=None)
CONTAINS = CellAssertion(type="contains", label="contains 'x'", passed=True, score=1.0, reason="contains 'x'")


def run(repeat: int, status: str, latency: float, cost: float | None, tokens: int = 10) -> CellRun:
    return CellRun(repeat=repeat, run_id=f"r{repeat}", status=status,  # type: ignore[arg-type]
                   reason="" if status == "passed" else "judge 'polite': curt",
                   assertions=[CONTAINS, JUDGED if status != "passed" else CONTAINS],
                   latency=latency, time_to_first_token=latency / 10, input_tokens=5, output_tokens=tokens,
                   cost_usd=cost, grading_cost_usd=None if cost is None else 0.0)


async def test_cells_keep_their_runs_and_assertions(store: SqlRunStore) -> None:
    await store.add_evaluation(EvaluationRecord(id="e1", template="t", template_hash="h1", dataset="d.csv",
                                                dataset_hash="dh", models=["demo:echo"], name="nightly", repeats=3))
    runs = [run(1, "passed", 1.0, 0.001, 10), run(2, "failed", 3.0, 0.003, 13), run(3, "passed", 2.0, 0.002, 12)]
    flaky = EvaluationCell(case_id="a", model="demo:echo", run_id="r1", passed=False,
                           reason="2/3 runs passed; judge 'polite': curt", runs=runs)
    old_style = EvaluationCell(case_id="b", model="demo:echo", run_id="rb", passed=True)
    await store.save(new=[RunRecord(id="rb", model="demo:echo", request={}, status="completed",
                                    metrics=Metrics(total_time=0.5, output_tokens=4, cost_usd=0.0))], updates=[])
    await store.finish_evaluation("e1", "completed", [flaky, old_style])

    stored = await store.get_evaluation("e1")
    assert stored is not None and (stored.name, stored.repeats) == ("nightly", 3)
    cells = {c.case_id: c for c in stored.cells}
    assert cells["a"] == flaky and cells["b"].runs == []
    assert cells["a"].runs[1].assertions[1] == JUDGED and not cells["a"].runs[1].passed

    queried = {c.case_id: c for c in await EvaluationQueries.of(store).cells("e1")}
    a, b = queried["a"], queried["b"]
    assert (a.repeats, a.assertions, a.runs) == (3, [CONTAINS, CONTAINS], runs)
    # several runs: medians of the measures, the mean cost
    assert (a.latency, a.time_to_first_token, a.output_tokens) == (2.0, pytest.approx(0.2), 12)
    assert a.cost_usd == pytest.approx(0.002)
    # a cell kept before runs were: its run's measures, no assertions
    assert (b.repeats, b.assertions, b.latency, b.output_tokens, b.cost_usd) == (1, [], 0.5, 4, 0.0)


async def test_an_unknown_cost_in_any_run_leaves_the_cells_unknown(store: SqlRunStore) -> None:
    await store.add_evaluation(EvaluationRecord(id="e2", template="t", template_hash="h", dataset="d.csv",
                                                dataset_hash="dh", models=["m:x"]))
    await store.finish_evaluation("e2", "completed", [EvaluationCell(
        case_id="a", model="m:x", passed=True, runs=[run(1, "passed", 1.0, 0.001), run(2, "passed", 1.0, None)])])
    [cell] = await EvaluationQueries.of(store).cells("e2")
    assert cell.cost_usd is None and cell.latency == 1.0


async def test_a_baseline_by_name_is_the_newest_completed_one_so_called(store: SqlRunStore) -> None:
    for evaluation_id, name, created, status, template in [
        ("old", "nightly", 1.0, "completed", "t"), ("new", "nightly", 2.0, "completed", "t"),
        ("running", "nightly", 3.0, "running", "t"), ("other", "nightly", 4.0, "completed", "u"),
        ("plain", None, 5.0, "completed", "t"),
    ]:
        await store.add_evaluation(EvaluationRecord(id=evaluation_id, template=template, template_hash="h",
                                                    dataset="d.csv", dataset_hash="dh", models=[], name=name,
                                                    created_at=created))
        if status == "completed":
            await store.finish_evaluation(evaluation_id, "completed", [])
    queries = EvaluationQueries.of(store)
    found = await queries.named("nightly", template="t")
    assert found is not None and (found.id, found.name, found.repeats) == ("new", "nightly", 1)
    also = await queries.named("nightly", template="t", exclude="new")
    assert also is not None and also.id == "old"
    other = await queries.named("nightly")
    assert other is not None and other.id == "other"
    assert await queries.named("weekly") is None
