"""The run store, the same tests on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time

import pytest

from llmtool.events import Completed, Interrupted, Metrics, Started, TextDelta
from llmtool.store import (
    EvaluationCell,
    EvaluationRecord,
    Owner,
    RunQuery,
    RunRecord,
    RunUpdate,
    TemplateVersion,
    ValidationOutcome,
)
from llmtool.store import sql as sql_module
from llmtool.store.sql import SqlRunStore


def record(run_id: str, **fields: object) -> RunRecord:
    values: dict[str, object] = {
        "id": run_id, "model": "demo:assistant", "request": {"messages": [{"role": "user", "content": "hi"}]},
        "prompt": "hi", "source": "chat",
    }
    values.update(fields)
    return RunRecord.model_validate(values)


async def test_a_run_grows_in_chunks_and_replays_from_any_position(store: SqlRunStore) -> None:
    await store.save([record("r1")], [RunUpdate("r1", 0, [Started(run_id="r1", model="demo:assistant")])])
    await store.save([], [RunUpdate("r1", 1, [TextDelta(text="Hel"), TextDelta(text="lo")], {"text": "Hello"})])
    running = await store.get_run("r1")
    assert running is not None
    assert (running.status, running.text, running.event_count) == ("running", "Hello", 3)

    metrics = Metrics(total_time=1.5, output_tokens=2, cost_usd=0.25)
    done = Completed(finish_reason="stop", text="Hello", metrics=metrics)
    await store.save([], [RunUpdate("r1", 3, [done], {
        "status": "completed", "metrics": metrics, "ended_at": 123.0,
        "validation": ValidationOutcome(passed=False, problems=["too short"], rules_checked=1),
    })])
    stored = await store.get_run("r1")
    assert stored is not None
    assert stored.status == "completed" and stored.ended
    assert stored.metrics == metrics and stored.ended_at == 123.0
    assert stored.validation == ValidationOutcome(passed=False, problems=["too short"], rules_checked=1)

    events = await store.events("r1")
    assert [e.kind for e in events] == ["started", "text", "text", "completed"]
    assert [e.kind for e in await store.events("r1", start=2)] == ["text", "completed"]
    assert await store.events("r1", start=4) == []
    assert await store.events("unknown") == []
    assert await store.get_run("unknown") is None


async def test_history_is_newest_first_filtered_and_paged(store: SqlRunStore) -> None:
    base = time.time()
    new = [
        record(f"r{i}", status="completed" if i % 2 else "failed", model=f"demo:{'echo' if i % 3 else 'assistant'}",
               template="classify" if i < 4 else None, user="ann" if i < 5 else "bob", created_at=base + i)
        for i in range(10)
    ]
    await store.save(new, [])
    page = await store.list_runs(RunQuery(limit=4))
    assert [r.id for r in page.runs] == ["r9", "r8", "r7", "r6"]
    page2 = await store.list_runs(RunQuery(limit=4, before=page.next_cursor))
    assert [r.id for r in page2.runs] == ["r5", "r4", "r3", "r2"]
    page3 = await store.list_runs(RunQuery(limit=4, before=page2.next_cursor))
    assert [r.id for r in page3.runs] == ["r1", "r0"] and page3.next_cursor is None

    def ids(page_runs: list[RunRecord]) -> list[str]:
        return [r.id for r in page_runs]

    assert ids((await store.list_runs(RunQuery(status="failed"))).runs) == ["r8", "r6", "r4", "r2", "r0"]
    assert ids((await store.list_runs(RunQuery(model="demo:assistant"))).runs) == ["r9", "r6", "r3", "r0"]
    assert ids((await store.list_runs(RunQuery(template="classify", user="ann"))).runs) == ["r3", "r2", "r1", "r0"]
    assert ids((await store.list_runs(RunQuery(since=base + 7))).runs) == ["r9", "r8", "r7"]
    assert ids((await store.list_runs(RunQuery(until=base + 2))).runs) == ["r1", "r0"]
    assert await store.count_runs(RunQuery(user="bob")) == 5


SEARCH_TEXTS = {
    "a": ("Summarise the invoice", "The invoice total is 42 EUR."),
    "b": ("Classify this e-mail", "Label: spam. The sender foo-bar@example.com wants money."),
    "c": ("Write a poem about AND gates", "Gates open, gates close: NEAR and FAR."),
    "d": ("Résumé of the café meeting", "Everyone drank coffee; CAFÉ au lait."),
    "e": ("snake_case names", "use snake_case for variables"),
}


@pytest.mark.parametrize(("words", "expected"), [
    ("invoice", ["a"]),
    ("INVOICE total", ["a"]),  # case-insensitive, every word required
    ("invoice spam", []),
    ("foo-bar", ["b"]),  # punctuation is not an operator: the words foo and bar
    ("example", ["b"]),  # inside an address: still a word of its own
    ("AND", ["c"]),  # a bare operator word is just text
    ("NEAR(gates", ["c"]),
    ('"gates', ["c"]),
    ("gat*", []),  # no prefix search: whole words only
    ("café", ["d"]),
    ("cafe", []),  # accents count
    ("snake", ["e"]),
    ("42", ["a"]),
    ("", ["a", "b", "c", "d", "e"]),  # no words: no text filter
    ("-- ; ' OR 1=1", []),
])
async def test_search_is_whole_words_all_required_and_the_same_on_both_backends(
    store: SqlRunStore, words: str, expected: list[str]
) -> None:
    await store.save([record(key, prompt=prompt, text=answer) for key, (prompt, answer) in SEARCH_TEXTS.items()], [])
    found = await store.list_runs(RunQuery(text=words))
    assert sorted(r.id for r in found.runs) == expected


async def test_search_follows_text_written_while_the_run_streams(store: SqlRunStore) -> None:
    await store.save([record("r1", prompt="question")], [])
    assert (await store.list_runs(RunQuery(text="zebra"))).runs == []
    await store.save([], [RunUpdate("r1", 0, [TextDelta(text="a zebra")], {"text": "a zebra"})])
    assert [r.id for r in (await store.list_runs(RunQuery(text="zebra"))).runs] == ["r1"]


async def test_export_reads_every_selected_run_not_just_a_page(
    store: SqlRunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql_module, "EXPORT_BATCH", 3)
    await store.save([record(f"r{i}", status="completed" if i != 5 else "failed") for i in range(10)], [])
    exported = [r.id async for r in store.iter_runs(RunQuery(status="completed"))]
    assert exported == [f"r{i}" for i in (9, 8, 7, 6, 4, 3, 2, 1, 0)]


async def test_a_conversation_lists_its_turns_with_regenerated_siblings(store: SqlRunStore) -> None:
    await store.save([
        record("t0", conversation_id="c1", position=0),
        record("t1", conversation_id="c1", position=1),
        record("t1b", conversation_id="c1", position=1),  # Regenerate: a sibling, kept
        record("x", conversation_id="c2", position=0),
    ], [])
    assert [r.id for r in await store.conversation("c1")] == ["t0", "t1", "t1b"]


async def test_delete_really_deletes_the_run_its_events_and_its_words(store: SqlRunStore) -> None:
    await store.save(
        [record("r1", prompt="secret plan"), record("r2", conversation_id="c", position=0),
         record("r3", conversation_id="c", position=1, prompt="secret too")],
        [RunUpdate("r1", 0, [TextDelta(text="x")])],
    )
    assert await store.delete_run("r1") is True
    assert await store.delete_run("r1") is False
    assert await store.get_run("r1") is None and await store.events("r1") == []
    assert [r.id for r in (await store.list_runs(RunQuery(text="secret"))).runs] == ["r3"]
    assert await store.delete_conversation("c") == 2
    assert (await store.list_runs(RunQuery(text="secret"))).runs == []
    assert (await store.list_runs(RunQuery())).runs == []


async def test_retention_purges_old_ended_runs_but_never_a_running_one(store: SqlRunStore) -> None:
    now = time.time()
    await store.save([
        record("old", status="completed", created_at=now - 10 * 86400),
        record("old-running", status="running", created_at=now - 10 * 86400),
        record("new", status="completed", created_at=now),
    ], [RunUpdate("old", 0, [TextDelta(text="x")])])
    assert await store.purge(now - 86400) == 1
    assert {r.id for r in (await store.list_runs(RunQuery())).runs} == {"old-running", "new"}
    assert await store.events("old") == []


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


async def test_runs_of_a_dead_process_are_interrupted_once_with_their_text(store: SqlRunStore) -> None:
    host = sql_module.this_host()
    me = Owner("me", host, os.getpid(), time.time())
    dead = Owner("dead", host, _dead_pid(), time.time())
    live_elsewhere = Owner("other-host", "elsewhere", 1, time.time())
    silent = Owner("silent", "elsewhere", 2, time.time())
    for owner in (me, dead, live_elsewhere, silent):
        await store.heartbeat(owner)
    await store.save(
        [record("mine", owner="me"), record("orphan", owner="dead"), record("busy", owner="other-host"),
         record("stale", owner="silent"), record("ownerless", owner="never-registered"),
         record("ended", owner="dead", status="completed")],
        [RunUpdate("orphan", 0, [Started(run_id="orphan", model="demo:assistant"), TextDelta(text="half an ")],
                   {"text": "half an "})],
    )
    # "silent" last beat long ago
    await store.heartbeat(silent)
    async with store.engine.begin() as connection:
        from llmtool.store.schema import owners

        await connection.execute(owners.update().where(owners.c.id == "silent").values(heartbeat_at=time.time() - 120))

    first, second = await asyncio.gather(store.interrupt_orphans(me, 30), store.interrupt_orphans(me, 30))
    assert sorted(first + second) == ["orphan", "ownerless", "stale"]  # each exactly once
    orphan = await store.get_run("orphan")
    assert orphan is not None
    assert (orphan.status, orphan.text, orphan.error_kind) == ("interrupted", "half an ", "interrupted")
    events = await store.events("orphan")
    assert [e.kind for e in events] == ["started", "text", "interrupted"]
    assert isinstance(events[-1], Interrupted) and events[-1].text == "half an "
    assert orphan.metrics is not None and orphan.metrics.usage_estimated and orphan.metrics.output_tokens
    for untouched in ("mine", "busy", "ended"):
        run = await store.get_run(untouched)
        assert run is not None and run.status in ("running", "completed")
    assert await store.interrupt_orphans(me, 30) == []


async def test_templates_are_kept_once_per_content_hash(store: SqlRunStore) -> None:
    version = TemplateVersion(hash="abc123", name="classify", content="---\nmodel: demo:echo\n---\nHi")
    await store.save_template(version)
    await store.save_template(version.model_copy(update={"content": "changed"}))  # same hash: kept as first
    assert await store.template("abc123") == version
    assert await store.template("nope") is None


async def test_an_evaluation_is_stored_as_a_unit(store: SqlRunStore) -> None:
    evaluation = EvaluationRecord(id="e1", template="classify", template_hash="abc", dataset="classify.csv",
                                  dataset_hash="def", models=["demo:echo", "demo:assistant"])
    await store.add_evaluation(evaluation)
    cells = [EvaluationCell(case_id="1", model="demo:echo", run_id="r1", passed=True),
             EvaluationCell(case_id="1", model="demo:assistant", run_id=None, passed=False, reason="error")]
    await store.finish_evaluation("e1", "completed", cells)
    stored = await store.get_evaluation("e1")
    assert stored is not None
    assert stored.status == "completed" and stored.ended_at is not None
    assert sorted(stored.cells, key=lambda c: c.model) == sorted(cells, key=lambda c: c.model)
    assert stored.models == ["demo:echo", "demo:assistant"]


async def test_the_shared_secret_is_made_once(store: SqlRunStore) -> None:
    first = await store.shared_secret("app")
    assert len(first) >= 32
    assert await store.shared_secret("app") == first
    assert await store.shared_secret("other") != first


async def test_text_no_database_would_take_is_stored_readably(store: SqlRunStore) -> None:
    hostile = "nul\x00 and a lone surrogate \ud800 end"
    await store.save([record("r1", prompt=hostile, variables={"k\x00": hostile})],
                     [RunUpdate("r1", 0, [TextDelta(text=hostile)], {"text": hostile})])
    stored = await store.get_run("r1")
    assert stored is not None
    assert stored.text == stored.prompt == "nul\ufffd and a lone surrogate ? end"
    events = await store.events("r1")
    assert isinstance(events[0], TextDelta) and events[0].text.startswith("nul")
    assert [r.id for r in (await store.list_runs(RunQuery(text="surrogate"))).runs] == ["r1"]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
async def test_export_writes_every_selected_run_safely(store: SqlRunStore, tmp_path, suffix: str) -> None:  # type: ignore[no-untyped-def]
    import csv
    import json

    from llmtool.store.export import export_runs

    await store.save([record("r1", text="=HYPERLINK(\"http://x\")", status="completed"),
                      record("r2", text="plain, \"quoted\"\nnew line", status="completed"),
                      record("r3", status="failed")], [])
    path = tmp_path / f"out{suffix}"
    assert await export_runs(store, RunQuery(status="completed"), path) == 2
    if suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        assert [r["id"] for r in rows] == ["r2", "r1"] and rows[1]["text"] == "=HYPERLINK(\"http://x\")"
    else:
        assert path.read_bytes().startswith(b"\xef\xbb\xbf")
        rows = list(csv.DictReader(path.open(encoding="utf-8-sig", newline="")))
        assert [r["id"] for r in rows] == ["r2", "r1"]
        assert rows[0]["text"] == "plain, \"quoted\"\nnew line"
        assert rows[1]["text"] == "'=HYPERLINK(\"http://x\")"  # a spreadsheet shows it, never runs it


async def test_export_to_a_bad_file_is_a_clear_error(store: SqlRunStore, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from llmtool.store import StoreError
    from llmtool.store.export import export_runs

    with pytest.raises(StoreError, match=r"must end in \.jsonl or \.csv"):
        await export_runs(store, RunQuery(), tmp_path / "out.xlsx")
    with pytest.raises(StoreError, match="cannot write"):
        await export_runs(store, RunQuery(), tmp_path / "missing" / "out.csv")


async def test_an_idempotency_key_belongs_to_the_first_run_that_claims_it(store: SqlRunStore) -> None:
    claims = await asyncio.gather(*(store.claim_idempotency_key("ann", "k1", f"run{i}") for i in range(5)))
    assert len(set(claims)) == 1 and claims[0].startswith("run")
    assert await store.claim_idempotency_key("ann", "k1", "later") == claims[0]
    assert await store.claim_idempotency_key("bob", "k1", "bobs") == "bobs"  # keys are per user
    assert await store.claim_idempotency_key(None, "k1", "anon") == "anon"
