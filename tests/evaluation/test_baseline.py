"""Comparing an evaluation with its baseline in a real SQLite store: the exact fixed/regressed sets,
the deltas, `last` resolution, the template versions' diff, and the end-to-end path of editing a
template and evaluating again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from llmtool.evaluation import load_dataset, run_evaluation
from llmtool.evaluation.baseline import (
    BaselineError,
    Cell,
    compare,
    compare_evaluations,
    resolve_baseline,
    template_diff,
)
from llmtool.events import Metrics
from llmtool.service import LLMService
from llmtool.settings import Settings
from llmtool.store import EvaluationCell, EvaluationRecord, RunRecord, StoreError, TemplateVersion, open_store
from llmtool.store.evaluation_queries import EvaluationQueries
from llmtool.store.sql import SqlRunStore
from llmtool.templates import load_template
from tests.helpers import write_template

V1 = "---\nmodel: demo:echo\n---\nClassify: {{ text }}\n"
V2 = "---\nmodel: demo:echo\n---\nClassify briefly: {{ text }}\n"
MODELS = ["demo:a", "demo:b"]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlRunStore]:
    opened = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'runs.db'}")
    try:
        yield opened
    finally:
        await opened.aclose()


def run(run_id: str, model: str, total: float, output: int, cost: float | None, ttft: float = 0.1) -> RunRecord:
    metrics = Metrics(total_time=total, time_to_first_token=ttft, input_tokens=10, output_tokens=output,
                      cost_usd=cost)
    return RunRecord(id=run_id, model=model, request={}, status="completed", text="…", metrics=metrics)


async def stored_evaluation(store: SqlRunStore, evaluation_id: str, template_hash: str, created_at: float,
                            cells: dict[tuple[str, str], tuple[bool, str, float, int, float | None]], *,
                            template: str = "classify", dataset: str = "cases.csv", status: str = "completed",
                            user: str | None = None) -> None:
    await store.add_evaluation(EvaluationRecord(
        id=evaluation_id, user=user, template=template, template_hash=template_hash, dataset=dataset,
        dataset_hash="d1", models=MODELS, created_at=created_at))
    runs = [run(f"{evaluation_id}-{case}-{model}", model, total, output, cost)
            for (case, model), (_, _, total, output, cost) in cells.items()]
    await store.save(new=runs, updates=[])
    await store.finish_evaluation(evaluation_id, status, [
        EvaluationCell(case_id=case, model=model, run_id=f"{evaluation_id}-{case}-{model}", passed=passed, reason=reason)
        for (case, model), (passed, reason, *_) in cells.items()
    ])


BASELINE = {
    ("#1", "demo:a"): (True, "", 1.0, 10, 0.001),
    ("#1", "demo:b"): (True, "", 2.0, 20, None),
    ("#2", "demo:a"): (False, "expected to contain 'spam'", 1.0, 10, 0.001),
    ("#2", "demo:b"): (False, "expected to contain 'spam'", 1.0, 10, 0.001),
    ("#10", "demo:a"): (True, "", 1.0, 10, 0.001),
    ("gone", "demo:a"): (True, "", 1.0, 10, 0.001),
}
CURRENT = {
    ("#1", "demo:a"): (False, "expected to contain 'ham'", 1.5, 14, 0.0015),  # regressed
    ("#1", "demo:b"): (True, "", 1.75, 18, 0.002),                             # still passing, cost was unknown
    ("#2", "demo:a"): (True, "", 0.5, 8, 0.0005),                              # fixed
    ("#2", "demo:b"): (False, "expected to contain 'spam'", 1.0, 10, 0.001),   # still failing
    ("#10", "demo:a"): (True, "", 1.0, 10, 0.001),                             # still passing
    ("new", "demo:a"): (True, "", 1.0, 10, 0.001),                             # new case
}


async def two_evaluations(store: SqlRunStore) -> None:
    await store.save_template(TemplateVersion(hash="h1", name="classify", content=V1))
    await store.save_template(TemplateVersion(hash="h2", name="classify", content=V2))
    await stored_evaluation(store, "base", "h1", 100.0, BASELINE)
    await stored_evaluation(store, "cur", "h2", 200.0, CURRENT)


async def test_the_exact_changes_and_deltas(store: SqlRunStore) -> None:
    await two_evaluations(store)
    comparison = await compare_evaluations(store, "cur", "base")

    by_change: dict[str, set[tuple[str, str]]] = {}
    for cell in comparison.cells:
        by_change.setdefault(cell.change, set()).add((cell.case_id, cell.model))
    assert by_change == {
        "regressed": {("#1", "demo:a")},
        "fixed": {("#2", "demo:a")},
        "still_failing": {("#2", "demo:b")},
        "still_passing": {("#1", "demo:b"), ("#10", "demo:a")},
        "new": {("new", "demo:a")},
        "removed": {("gone", "demo:a")},
    }
    assert comparison.summary() == {"regressed": 1, "fixed": 1, "still_failing": 1, "still_passing": 2, "new": 1,
                                    "removed": 1}
    assert [(c.case_id, c.model) for c in comparison.cells] == [
        ("#1", "demo:a"), ("#1", "demo:b"), ("#2", "demo:a"), ("#2", "demo:b"), ("#10", "demo:a"), ("new", "demo:a"),
        ("gone", "demo:a"),
    ]  # natural order, removed cells last
    assert [(c.case_id, c.change) for c in comparison.rows(changed_only=True)] == [
        ("#1", "regressed"), ("#2", "fixed"), ("new", "new"), ("gone", "removed")]

    cells = {(c.case_id, c.model): c for c in comparison.cells}
    regressed = cells["#1", "demo:a"]
    assert (regressed.latency_delta, regressed.output_tokens_delta, regressed.input_tokens_delta,
            regressed.cost_delta, regressed.time_to_first_token_delta) == (0.5, 4, 0, 0.0005, 0.0)
    assert regressed.current is not None and regressed.current.reason == "expected to contain 'ham'"
    assert regressed.baseline is not None and regressed.baseline.passed
    fixed = cells["#2", "demo:a"]
    assert (fixed.latency_delta, fixed.output_tokens_delta, fixed.cost_delta) == (-0.5, -2, -0.0005)
    unknown = cells["#1", "demo:b"]
    assert (unknown.latency_delta, unknown.cost_delta) == (-0.25, None)  # an unknown cost stays unknown
    assert cells["new", "demo:a"].latency_delta is None and cells["gone", "demo:a"].current is None
    assert [c.case_id for c in comparison.regressed] == ["#1"] and [c.case_id for c in comparison.fixed] == ["#2"]
    assert comparison.pass_rates() == {"demo:a": (0.75, 0.75), "demo:b": (0.5, 0.5)}

    assert comparison.template_diff == (
        "--- classify @ h1\n+++ classify @ h2\n@@ -1,4 +1,4 @@\n ---\n model: demo:echo\n ---\n"
        "-Classify: {{ text }}\n+Classify briefly: {{ text }}\n"
    )
    lines = comparison.report_lines()
    assert lines[:2] == ["compared with evaluation base (template h1 → h2)",
                         "1 regressed, 1 fixed, 1 still failing, 2 still passing, 1 new, 1 removed"]
    assert lines[2] == "regressed      #1 × demo:a: expected to contain 'ham' (Δ +0.50 s, +4 tok, +$0.000500)"
    assert lines[3] == "fixed          #2 × demo:a: was: expected to contain 'spam' (Δ −0.50 s, −2 tok, −$0.000500)"
    assert len(comparison.report_lines(changed_only=False)) == 2 + 7


async def test_last_is_the_newest_earlier_completed_evaluation_of_the_same_template_and_dataset(
    store: SqlRunStore,
) -> None:
    await two_evaluations(store)
    one = {("#1", "demo:a"): (True, "", 1.0, 10, 0.001)}
    await stored_evaluation(store, "stopped", "h1", 150.0, one, status="stopped")
    await stored_evaluation(store, "other-data", "h1", 160.0, one, dataset="other.csv")
    await stored_evaluation(store, "other-template", "h1", 170.0, one, template="summarise")
    await stored_evaluation(store, "bob", "h1", 180.0, one, user="bob")
    await stored_evaluation(store, "later", "h1", 300.0, one)

    assert (await compare_evaluations(store, "cur", "last", user=None)).baseline_id == "bob"
    current = await store.get_evaluation("cur")
    assert current is not None
    assert (await resolve_baseline(store, current, "last", user=None)).id == "bob"
    queries = EvaluationQueries.of(store)
    listed = await queries.list_evaluations("classify", "cases.csv")
    assert [e.id for e in listed] == ["later", "cur", "bob", "stopped", "base"]
    assert all(e.cells == [] for e in listed)
    assert [e.id for e in await queries.list_evaluations("classify", statuses=["stopped"])] == ["stopped"]
    assert await queries.last_evaluation("classify", "cases.csv", before=100.0) is None

    with pytest.raises(BaselineError, match="no earlier completed evaluation of template 'classify'"):
        await compare_evaluations(store, "base", "last")
    with pytest.raises(BaselineError, match="cannot be the baseline of template 'classify'"):
        await compare_evaluations(store, "cur", "other-template")
    with pytest.raises(BaselineError, match="no evaluation 'nope'"):
        await compare_evaluations(store, "cur", "nope")
    with pytest.raises(BaselineError, match="its own baseline"):
        await compare_evaluations(store, "cur", "cur")
    with pytest.raises(BaselineError, match="no evaluation 'base'"):  # another login's evaluation is not found
        await compare_evaluations(store, "bob", "base", user="bob")
    with pytest.raises(BaselineError, match="no evaluation 'bob'"):
        await compare_evaluations(store, "bob", "base", user="ann")
    with pytest.raises(BaselineError, match="no earlier completed evaluation"):  # only bob's own count
        await compare_evaluations(store, "bob", "last", user="bob")
    with pytest.raises(StoreError):
        EvaluationQueries.of(object())


async def test_same_version_or_missing_content_gives_no_diff_and_says_why(store: SqlRunStore) -> None:
    await store.save_template(TemplateVersion(hash="h1", name="classify", content=V1))
    await stored_evaluation(store, "a", "h1", 1.0, BASELINE)
    await stored_evaluation(store, "b", "h1", 2.0, BASELINE)
    await stored_evaluation(store, "c", "h9", 3.0, BASELINE)
    same = await compare_evaluations(store, "b", "a")
    assert (same.template_diff, same.diff_note) == ("", "same template version (h1)")
    assert same.summary()["still_passing"] == 4 and not same.regressed
    missing = await compare_evaluations(store, "c", "b")
    assert (missing.template_diff, missing.diff_note) == ("", "the content of template version h9 is not stored")


def test_template_diff_and_pure_comparison() -> None:
    assert template_diff("a\nb\n", "a\nb\n") == ""
    assert template_diff("a", "b") == "--- baseline\n+++ current\n@@ -1 +1 @@\n-a\n\\ No newline at end of file\n" \
                                      "+b\n\\ No newline at end of file\n"
    comparison = compare([Cell(case_id="x", model="m", passed=False, reason="r")],
                         [Cell(case_id="x", model="m", passed=True)], template="t")
    assert comparison.summary()["regressed"] == 1 and comparison.template == "t"


async def test_editing_a_template_and_evaluating_again(tmp_path: Path, fast_settings: Settings) -> None:
    """The whole path: two evaluations through the runner and the store, then the comparison."""
    folder = tmp_path / "prompts"
    folder.mkdir()
    cases = tmp_path / "cases.csv"
    cases.write_text("id,word,expect_contains\ncat,cat,Say cat\ndog,dog,Shout dog\nemu,emu,emu\n", encoding="utf-8")
    service = LLMService(fast_settings)
    await service.attach_store(await open_store(f"sqlite+aiosqlite:///{tmp_path / 'runs.db'}"))
    try:
        path = write_template(folder, "say", "---\nmodel: demo:echo\nvariables:\n  word: {}\n---\nSay {{ word }}\n")
        first_template = load_template(path)
        first = await run_evaluation(service, first_template, load_dataset(cases, first_template), ["demo:echo"])
        path = write_template(folder, "say", "---\nmodel: demo:echo\nvariables:\n  word: {}\n---\nShout {{ word }}\n")
        second_template = load_template(path)
        second = await run_evaluation(service, second_template, load_dataset(cases, second_template), ["demo:echo"])
        assert service.recorder is not None and service.store is not None
        await service.recorder.flush()
        assert first.evaluation_id and second.evaluation_id
        comparison = await compare_evaluations(service.store, second.evaluation_id, "last")
    finally:
        await service.aclose()
    assert comparison.baseline_id == first.evaluation_id
    assert {c.case_id: c.change for c in comparison.cells} == {"cat": "regressed", "dog": "fixed",
                                                               "emu": "still_passing"}
    assert "-Say {{ word }}\n+Shout {{ word }}\n" in comparison.template_diff
    cat = next(c for c in comparison.cells if c.case_id == "cat")
    assert cat.current is not None and cat.current.reason == "expected to contain 'Say cat'"
    assert cat.output_tokens_delta == 0 and cat.cost_delta == 0.0 and cat.latency_delta is not None
