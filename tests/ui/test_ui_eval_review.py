"""The Evaluate tab's reading handlers over a real SQLite run store, without a server: two stored
evaluations with known differences → the summary, the marked table, the charts against the baseline;
a baseline picked later; a cell's run; the permalink's page load; another user's evaluation is
"not found" exactly like a missing one, an admin's role reads every one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from llmtool.events import Metrics
from llmtool.store import EvaluationCell, EvaluationRecord, RunRecord, TemplateVersion, open_store
from llmtool.store.records import CellAssertion, CellRun
from llmtool.store.sql import SqlRunStore
from llmtool.ui.eval_review import ReviewHandlers
from llmtool.ui.eval_update import OUTPUTS

V1 = "---\nmodel: demo:echo\n---\nClassify: {{ text }}\n"
V2 = "---\nmodel: demo:echo\n---\nClassify briefly: {{ text }}\n"
MODELS = ["demo:a", "demo:b"]
# (case, model) → (passed, reason, latency, output tokens, cost)
BASELINE = {
    ("#1", "demo:a"): (True, "", 1.0, 10, 0.001),
    ("#1", "demo:b"): (True, "", 2.0, 20, 0.002),
    ("#2", "demo:a"): (False, "expected to contain 'spam'", 1.0, 10, 0.001),
    ("#2", "demo:b"): (False, "expected to contain 'spam'", 1.0, 10, 0.001),
}
CURRENT = {
    ("#1", "demo:a"): (False, "expected to contain 'ham'", 1.5, 14, 0.0015),  # regressed
    ("#1", "demo:b"): (True, "", 1.75, 18, 0.002),                             # still passing
    ("#2", "demo:a"): (True, "", 0.5, 8, 0.0005),                              # fixed
    ("#2", "demo:b"): (False, "expected to contain 'spam'", 1.0, 10, 0.001),   # still failing
}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlRunStore]:
    opened = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'runs.db'}")
    try:
        yield opened
    finally:
        await opened.aclose()


async def stored_evaluation(store: SqlRunStore, evaluation_id: str, template_hash: str, created_at: float,
                            cells: dict[tuple[str, str], tuple[bool, str, float, int, float]],
                            user: str = "ann") -> None:
    await store.add_evaluation(EvaluationRecord(
        id=evaluation_id, user=user, template="classify", template_hash=template_hash, dataset="cases.csv",
        dataset_hash="d1", models=MODELS, created_at=created_at))
    runs = [RunRecord(id=f"{evaluation_id}-{case}-{model}", user=user, model=model, status="completed",
                      text=f"answer to {case}", request={"model": model, "messages": [
                          {"role": "user", "content": f"Classify: ticket {case}"}]},
                      metrics=Metrics(total_time=total, output_tokens=out, input_tokens=5, cost_usd=cost))
            for (case, model), (_, _, total, out, cost) in cells.items()]
    await store.save(new=runs, updates=[])
    await store.finish_evaluation(evaluation_id, "completed", [
        EvaluationCell(case_id=case, model=model, run_id=f"{evaluation_id}-{case}-{model}", passed=passed,
                       reason=reason, runs=[CellRun(
                           run_id=f"{evaluation_id}-{case}-{model}", status="passed" if passed else "failed",
                           reason=reason, latency=total, output_tokens=out, input_tokens=5, cost_usd=cost,
                           assertions=[CellAssertion(type="contains", label="contains", passed=passed,
                                                     score=float(passed), reason=reason or "found")])])
        for (case, model), (passed, reason, total, out, cost) in cells.items()
    ])


@pytest.fixture
async def review(store: SqlRunStore) -> ReviewHandlers:
    await store.save_template(TemplateVersion(hash="h1", name="classify", content=V1))
    await store.save_template(TemplateVersion(hash="h2", name="classify", content=V2))
    await stored_evaluation(store, "base", "h1", 100.0, BASELINE)
    await stored_evaluation(store, "cur", "h2", 200.0, CURRENT)
    await stored_evaluation(store, "bobs", "h2", 300.0, CURRENT, user="bob")
    admins = {"root"}
    context = SimpleNamespace(
        service=SimpleNamespace(store=store), redact=lambda text: text,
        principal=lambda user: SimpleNamespace(sees_all_runs=user in admins),
        registry=SimpleNamespace(get=lambda name: SimpleNamespace(meta=SimpleNamespace(baseline=None))),
    )
    return ReviewHandlers(context, {})  # type: ignore[arg-type]


def as_user(user: str | None, **query: str) -> Any:
    return SimpleNamespace(username=user, query_params=query)


def page_choices(page: dict[str, Any]) -> list[tuple[str, str]]:
    return [tuple(choice) for choice in page["baseline"]["choices"]]


def named(outputs: tuple[Any, ...]) -> dict[str, Any]:
    assert len(outputs) == len(OUTPUTS)
    return dict(zip(OUTPUTS, outputs, strict=True))


async def test_two_stored_evaluations_compared_say_exactly_what_changed(review) -> None:
    page = named(await review.open_evaluation("cur", "base", request=as_user("ann")))
    assert page["progress"].startswith("Stored evaluation · Done · 2/4 passed · ")
    assert page["eval_id"] == "cur" and page["link"].startswith("[Link to this evaluation](?evaluation=cur)")
    comparison = page["comparison"].splitlines()
    assert comparison[0] == "**Compared with** [evaluation base](?evaluation=base) · template @h1 → @h2"
    assert comparison[2] == "**▼ regressed 1 · ▲ fixed 1 · 1 still failing · 1 still passing**"
    assert "| demo:a | 50% → 50% | ▲1 ▼1 | ±0 | +2 | ±0 |" in comparison
    assert "| demo:b | 50% → 50% | ▲0 ▼0 | −0.12 s | −2 | ±0 |" in comparison  # mean of −0.25 s and 0 s
    assert "- ▼ regressed · #1 × demo:a: expected to contain 'ham' · Δ +0.50 s, +4 tok, +$0.000500" in comparison
    assert "- ▲ fixed · #2 × demo:a (was: expected to contain 'spam') · Δ −0.50 s, −2 tok, −$0.000500" in comparison
    assert "-Classify: {{ text }}\n+Classify briefly: {{ text }}" in page["diff"]
    table = page["table"]["data"]
    assert table[0][0] == "#1" and table[0][1].endswith("· ▼ regressed") and table[1][1].endswith("· ▲ fixed")
    assert "baseline" in page["charts"] and page["charts"].count("<svg") == 3
    assert page["compared"].summary()["regressed"] == 1
    assert [value for _, value in page["evaluation"]["choices"]] == ["cur", "base"]  # newest first, bob's not
    assert page["evaluation"]["value"] == "cur"
    assert [value for _, value in page["baseline"]["choices"]] == ["last", "none", "base"]


async def test_last_is_the_newest_earlier_completed_one_and_none_compares_nothing(review) -> None:
    page = named(await review.open_evaluation("cur", "last", request=as_user("ann")))
    assert "[evaluation base]" in page["comparison"]
    earliest = named(await review.open_evaluation("base", "last", request=as_user("ann")))
    assert earliest["comparison"] == "⚠ no earlier completed evaluation of template 'classify' on cases.csv to " \
                                     "compare with"
    assert earliest["compared"] is None and "baseline" not in earliest["charts"]
    again = named(await review.pick_baseline("cur", "none", page["report"], request=as_user("ann")))
    assert again["comparison"] == "_No baseline picked: pick one to see what changed._"
    assert not any(row[1].endswith("regressed") for row in again["table"]["data"])
    picked = named(await review.pick_baseline("cur", "base", page["report"], changed_only=True,
                                              request=as_user("ann")))
    assert [row[0] for row in picked["table"]["data"]] == ["#1", "#2"] and "▲ fixed 1" in picked["comparison"]


async def test_another_users_evaluation_is_not_found_like_a_missing_one(review) -> None:
    theirs = named(await review.open_evaluation("bobs", "last", request=as_user("ann")))
    missing = named(await review.open_evaluation("nope", "last", request=as_user("ann")))
    assert theirs["progress"] == "⚠ evaluation bobs not found" and missing["progress"] == "⚠ evaluation nope not found"
    assert all(v == {"__type__": "update"} for k, v in theirs.items() if k not in ("progress", "run", "stop"))
    assert named(await review.open_evaluation("bobs", "last", request=as_user("root")))["eval_id"] == "bobs"
    assert named(await review.open_evaluation("cur", "bobs", request=as_user("bob")))["progress"] == \
        "⚠ evaluation cur not found"
    # bob's evaluation as the baseline of ann's: not offered, and unknown when asked for, like a missing one
    theirs = named(await review.open_evaluation("cur", "bobs", request=as_user("ann")))
    missing = named(await review.open_evaluation("cur", "nope", request=as_user("ann")))
    assert theirs["comparison"] == missing["comparison"].replace("nope", "bobs")
    assert theirs["comparison"].startswith("⚠ no evaluation 'bobs' (an id, or the name of a completed evaluation")
    assert "bobs" not in [label for label, _ in page_choices(theirs)[:-1]]


async def test_a_permalink_opens_the_evaluation_on_page_load(review) -> None:
    tabs, *outputs = await review.on_load("classify", "cases.csv", None, "last",
                                          as_user("ann", evaluation="cur"))
    page = named(tuple(outputs))
    assert tabs.selected == "evaluate-tab" and page["eval_id"] == "cur" and "▲ fixed 1" in page["comparison"]
    tabs, *outputs = await review.on_load("classify", "cases.csv", None, "last",
                                          as_user("ann", evaluation="../x"))
    assert named(tuple(outputs))["progress"] == "⚠ evaluation ../x not found"
    tabs, *outputs = await review.on_load("classify", "cases.csv", None, "last", as_user("ann"))
    page = named(tuple(outputs))  # no link: the tab stays, the pickers are filled for what is picked
    assert tabs == {"__type__": "update"}
    assert [value for _, value in page["evaluation"]["choices"]] == ["cur", "base"]
    assert page["baseline"]["value"] == "last" and page["progress"] == {"__type__": "update"}


async def test_a_selected_cell_shows_its_stored_run_only_to_its_owner(review) -> None:
    page = named(await review.open_evaluation("cur", "base", request=as_user("ann")))
    event = SimpleNamespace(index=[0, 1], row_value=page["table"]["data"][0])
    detail = named(await review.select_cell(event, page["report"], "cur", as_user("ann")))
    assert detail["detail_title"].startswith("**#1 × demo:a** · ✗ failed: expected to contain 'ham' · "
                                             "[Open in History](?run=cur-#1-demo:a)")
    assert "Classify: ticket #1" in detail["detail_request"] and "answer to #1" in detail["detail_answer"]
    assert "**Assertions** · 0 of 1 passed" in detail["detail_checks"]
    # the same report in another user's hands (a state cannot be sent, but a run id must not be enough)
    other = named(await review.select_cell(event, page["report"], "cur", as_user("bob")))
    assert "not in the run store" in other["detail_request"] and "answer to #1" not in other["detail_answer"]
    case_column = SimpleNamespace(index=[0, 0], row_value=page["table"]["data"][0])
    assert named(await review.select_cell(case_column, page["report"], "cur", as_user("ann")))["detail_title"] == \
        {"__type__": "update"}
