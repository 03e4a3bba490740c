"""An evaluation run from the Evaluate tab's handler, in process over a real service and SQLite store:
repeats reach the runner and show per cell, the charts are redrawn at most twice a second while it
runs, and a second evaluation is compared with the first once it ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from itertools import pairwise
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from llmtool.settings import load_settings
from llmtool.ui.eval_update import OUTPUTS
from llmtool.ui.evaluate import EvalHandlers
from llmtool.web.context import AppContext
from tests.helpers import write_template

TEMPLATE = "---\nmodel: demo:echo\nvariables:\n  ticket: {type: text}\n---\nTicket: {{ ticket }}\n"
DATASET = "id,ticket,expect_contains\na,refund please,refund\nb,the export crashes,crash\nc,hello there,zebra\n"


@pytest.fixture
async def context(tmp_path: Path) -> AsyncIterator[AppContext]:
    prompts = tmp_path / "prompts"
    (prompts / "datasets").mkdir(parents=True)
    write_template(prompts, "tickets", TEMPLATE)
    (prompts / "datasets" / "tickets.csv").write_text(DATASET, encoding="utf-8")
    settings = load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'runs.db'}", prompts_dir=str(prompts),
                             default_model="demo:echo", demo={"first_token_delay": 0.02, "tokens_per_second": 400})
    made = AppContext(settings)
    await made.start()
    try:
        yield made
    finally:
        await made.aclose()


async def evaluation(handlers: EvalHandlers, **options: Any) -> list[tuple[float, dict[str, Any]]]:
    """Every update of one evaluation of tickets.csv, with when it came."""
    loop = asyncio.get_running_loop()
    arguments = {"template": "tickets", "dataset": "tickets.csv", "models": ["demo:echo"], "concurrency": 1,
                 "repeats": 1, "baseline": "last", **options}
    updates = []
    async for outputs in handlers.run(**arguments):
        assert len(outputs) == len(OUTPUTS)
        updates.append((loop.time(), dict(zip(OUTPUTS, outputs, strict=True))))
    return updates


async def test_repeats_show_per_cell_and_the_charts_redraw_at_most_twice_a_second(context) -> None:
    handlers = EvalHandlers(context)
    updates = await evaluation(handlers, repeats=4)
    last = updates[-1][1]
    assert last["progress"].startswith("Done · 12/12 · 8 passed · 4 failed") and "4 runs per cell" in last["progress"]
    assert [row[1].split(" ")[:2] for row in last["table"]["data"]] == [["4/4", "✓"], ["4/4", "✓"], ["0/4", "✗"]]
    drawn = [when for when, update in updates if isinstance(update["charts"], str)]
    assert len(updates) > len(drawn) >= 2  # some updates left the charts as they were
    # while it runs: at least half a second apart (the final update always draws)
    assert all(later - earlier >= 0.45 for earlier, later in pairwise(drawn[:-1]))
    assert last["charts"].count("<svg") == 3 and "demo:echo" in last["charts"]
    assert last["comparison"].startswith("⚠ no earlier completed evaluation of template 'tickets'")
    stored = await context.service.store.get_evaluation(updates[0][1]["eval_id"])  # type: ignore[union-attr]
    assert stored is not None and stored.repeats == 4 and stored.status == "completed"


async def test_the_next_evaluation_is_compared_with_the_last_one_once_it_ends(context) -> None:
    handlers = EvalHandlers(context)
    first = (await evaluation(handlers))[0][1]["eval_id"]
    updates = await evaluation(handlers)
    running, last = updates[0][1], updates[-1][1]
    current = running["eval_id"]
    assert running["comparison"] == "_Compared with the baseline once it ends._" and running["link"].endswith(
        f"id `{running['eval_id']}`")
    assert "baseline" in last["charts"]  # drawn against the first evaluation
    assert f"[evaluation {first}]" in last["comparison"] and "No verdict changed." in last["comparison"]
    assert "**▼ regressed 0 · ▲ fixed 0 · 1 still failing · 2 still passing**" in last["comparison"]
    assert [value for _, value in last["evaluation"]["choices"]] == [current, first]
    assert last["evaluation"]["value"] == current and last["baseline"]["value"] == "last"


async def test_repeats_outside_1_to_20_are_refused_with_a_sentence(context) -> None:
    handlers = EvalHandlers(context)
    updates = await evaluation(handlers, repeats=21)
    assert updates[-1][1]["progress"] == "⚠ repeats must be a whole number from 1 to 20; got 21"


async def test_a_cell_opens_its_run_as_soon_as_the_evaluation_ends(context) -> None:
    handlers = EvalHandlers(context)
    updates = await evaluation(handlers, repeats=2)
    eval_id, last = updates[0][1]["eval_id"], updates[-1][1]
    event = SimpleNamespace(index=[2, 1], row_value=last["table"]["data"][2])  # c × demo:echo: both runs failed
    detail = dict(zip(OUTPUTS, await handlers.review.select_cell(event, last["report"], eval_id), strict=True))
    assert detail["detail_title"].startswith("**c × demo:echo** · run 1 of 2 · ✗ failed: expected to contain 'zebra'")
    assert "Runs (0/2 passed)" in detail["detail_title"]
    assert "Ticket: hello there" in detail["detail_request"] and "Ticket: hello there" in detail["detail_answer"]
    assert "Completed" in detail["detail_checks"]
