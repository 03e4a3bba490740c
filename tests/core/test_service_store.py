"""Every run kept: the service records runs in the store as they stream, on both backends."""

from __future__ import annotations

import asyncio
import signal
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from typing import ClassVar

import pytest

from llmtool.events import Completed, TextDelta
from llmtool.service import LLMService, RunRequest
from llmtool.settings import load_settings
from llmtool.store import RunOrigin, RunQuery, open_store
from llmtool.store.sql import SqlRunStore


def settings(store_url: str, **overrides: object):  # type: ignore[no-untyped-def]
    values: dict[str, object] = {
        "database_url": store_url,
        "demo": {"first_token_delay": 0.0, "tokens_per_second": 100_000},
        "store": {"flush_interval": 0.2},
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
async def service(store_url: str) -> AsyncIterator[LLMService]:
    opened = await LLMService.open(settings(store_url))
    try:
        yield opened
    finally:
        await opened.aclose()


async def stored_when_ended(service: LLMService, run_id: str, timeout: float = 5.0):  # type: ignore[no-untyped-def]
    assert service.store is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = await service.store.get_run(run_id)
        if record is not None and record.ended:
            return record
        await asyncio.sleep(0.02)
    raise AssertionError(f"run {run_id} was not stored as ended within {timeout} s")


async def test_a_completed_run_is_stored_with_its_request_metrics_and_events(service: LLMService) -> None:
    run = service.start(
        RunRequest(model="demo:echo", prompt="one two three", system="Be terse.", temperature=0.3,
                   validation={"max_length": 100}),
        RunOrigin(user="ann", source="chat", conversation_id="c1", position=0),
    )
    terminal = await run.wait()
    assert isinstance(terminal, Completed)
    record = await stored_when_ended(service, run.id)
    assert (record.status, record.text, record.model, record.prompt) == (
        "completed", "one two three", "demo:echo", "one two three")
    assert (record.user, record.source, record.conversation_id, record.position) == ("ann", "chat", "c1", 0)
    assert record.system == "Be terse." and record.request["temperature"] == 0.3
    assert record.request["validation"]["max_length"] == 100
    assert record.validation is not None and record.validation.passed
    assert record.metrics == terminal.metrics
    assert record.ended_at is not None and record.ended_at >= record.created_at
    assert await service.store.events(run.id) == run.log  # type: ignore[union-attr]
    # Finished runs leave memory once stored; the store answers for them.
    assert service.get(run.id) is None
    assert [e.kind async for e in service.replay(run.id, start=len(run.log) - 1)] == ["completed"]


async def test_stopped_and_failed_runs_are_stored_with_their_partial_text(store_url: str) -> None:
    slow = settings(store_url, demo={"first_token_delay": 0.0, "tokens_per_second": 40})
    service = await LLMService.open(slow)
    try:
        run = service.start(RunRequest(model="demo:assistant", prompt="Tell me a long story."))
        async for event in run.events():
            if isinstance(event, TextDelta) and len(run.text_so_far()) > 10:
                break
        run.cancel()
        await run.wait()
        record = await stored_when_ended(service, run.id)
        assert record.status == "stopped" and record.text == run.text_so_far() and record.text

        failing = service.start(RunRequest(model="demo:assistant", prompt="x", timeouts={"first_token": 0.2, "total": 0.3}))
        await failing.wait()
        record = await stored_when_ended(service, failing.id)
        assert (record.status, record.error_kind) == ("failed", "deadline_exceeded")
        assert "0.3 s" in (record.error_message or "")
    finally:
        await service.aclose()


async def test_text_reaches_the_store_while_the_run_still_streams(store_url: str) -> None:
    service = await LLMService.open(settings(store_url, demo={"first_token_delay": 0.0, "tokens_per_second": 30}))
    try:
        run = service.start(RunRequest(model="demo:assistant", prompt="Explain streams at length."))
        await asyncio.sleep(1.0)
        assert not run.done
        record = await service.store.get_run(run.id)  # type: ignore[union-attr]
        assert record is not None and record.status == "running"
        assert record.text and run.text_so_far().startswith(record.text)
        assert record.event_count >= 2
        run.cancel()
        await run.wait()
    finally:
        await service.aclose()


async def test_a_template_version_is_stored_once_by_its_hash(service: LLMService, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from llmtool.templates import TemplateRegistry

    (tmp_path / "greet.md").write_text("---\nmodel: demo:echo\nvariables:\n  name: {}\n---\nHello {{ name }}\n")
    template = TemplateRegistry(tmp_path).get("greet")
    for name in ("Ann", "Bob"):
        run = service.start(template.to_run_request({"name": name}), RunOrigin(source="template"))
        await run.wait()
        record = await stored_when_ended(service, run.id)
        assert (record.template, record.template_hash, record.variables) == ("greet", template.content_hash,
                                                                             {"name": name})
    version = await service.store.template(template.content_hash)  # type: ignore[union-attr]
    assert version is not None and "Hello {{ name }}" in version.content


async def test_only_running_runs_stay_in_memory(service: LLMService) -> None:
    runs = [service.start(RunRequest(model="demo:echo", prompt=f"run {i}")) for i in range(50)]
    await asyncio.gather(*(run.wait() for run in runs))
    for run in runs:
        await stored_when_ended(service, run.id)
    assert service.running() == []
    assert await service.store.count_runs(RunQuery()) == 50  # type: ignore[union-attr]


class FlakyStore:
    """The real store, whose writes fail while `down` is set (a database that went away)."""

    def __init__(self, store: SqlRunStore) -> None:
        self.store = store
        self.down = True
        self.failed = 0

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.store, name)

    async def save(self, new, updates):  # type: ignore[no-untyped-def]
        if self.down:
            self.failed += 1
            raise OSError("connection refused")
        await self.store.save(new, updates)


async def test_a_store_that_fails_mid_run_does_not_fail_the_run(store_url: str) -> None:
    real = await open_store(store_url)
    flaky = FlakyStore(real)
    service = LLMService(settings(store_url))
    await service.attach_store(flaky)  # type: ignore[arg-type]
    try:
        run = service.start(RunRequest(model="demo:echo", prompt="still answered"))
        terminal = await run.wait()
        assert isinstance(terminal, Completed) and terminal.text == "still answered"
        await asyncio.sleep(0.5)
        assert flaky.failed >= 1
        assert service.store_problem is not None and "not being saved" in service.store_problem
        assert service.get(run.id) is run  # kept until it is stored
        flaky.down = False
        record = await stored_when_ended(service, run.id)
        assert record.text == "still answered"
        assert await real.events(run.id) == run.log
        assert service.store_problem is None
    finally:
        await service.aclose()


CRASHING_SERVER = textwrap.dedent("""
    import asyncio, sys
    from llmtool.service import LLMService, RunRequest
    from llmtool.settings import load_settings

    async def main():
        settings = load_settings(database_url=sys.argv[1], store={"flush_interval": 0.2},
                                 demo={"first_token_delay": 0, "tokens_per_second": 20})
        service = await LLMService.open(settings)
        run = service.start(RunRequest(model="demo:assistant", prompt="A long answer, please."))
        print(run.id, flush=True)
        await run.wait()

    asyncio.run(main())
""")


async def test_runs_of_a_killed_process_are_interrupted_with_their_text_at_the_next_start(store_url: str) -> None:
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", CRASHING_SERVER, store_url,
                                                   stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    run_id = (await process.stdout.readline()).decode().strip()
    store = await open_store(store_url)
    try:
        deadline = time.monotonic() + 10
        while True:  # wait until some text is stored, then kill -9 mid-answer
            record = await store.get_run(run_id)
            if record is not None and len(record.text) > 5:
                break
            assert time.monotonic() < deadline, "no text was stored"
            await asyncio.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        await process.wait()
        assert (await store.get_run(run_id)).status == "running"  # type: ignore[union-attr]
    finally:
        await store.aclose()

    service = await LLMService.open(settings(store_url))  # the next start finds it
    try:
        record = await service.store.get_run(run_id)  # type: ignore[union-attr]
        assert record is not None and record.status == "interrupted"
        assert len(record.text) > 5
        events = [e async for e in service.replay(run_id)]
        assert events[-1].kind == "interrupted" and events[-1].text == record.text  # type: ignore[union-attr]
        assert "".join(e.text for e in events if isinstance(e, TextDelta)).startswith(record.text)
    finally:
        await service.aclose()


async def test_a_live_process_keeps_its_running_runs(store_url: str) -> None:
    first = await LLMService.open(settings(store_url, demo={"first_token_delay": 0, "tokens_per_second": 20}))
    try:
        run = first.start(RunRequest(model="demo:assistant", prompt="Keep going."))
        await asyncio.sleep(0.5)
        second = await LLMService.open(settings(store_url))  # another process of the deployment starts
        await second.aclose()
        record = await first.store.get_run(run.id)  # type: ignore[union-attr]
        assert record is not None and record.status == "running"
        run.cancel()
        await run.wait()
    finally:
        await first.aclose()


async def test_an_evaluation_is_stored_as_a_unit_with_each_cells_run(service: LLMService, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from llmtool.evaluation import load_dataset, run_evaluation
    from llmtool.templates import TemplateRegistry

    (tmp_path / "echo.md").write_text("---\nmodel: demo:echo\nvariables:\n  text: {}\n---\n{{ text }}\n")
    (tmp_path / "cases.csv").write_text("id,text,expect_contains\none,hello,hello\ntwo,bye,hello\n")
    template = TemplateRegistry(tmp_path).get("echo")
    dataset = load_dataset(tmp_path / "cases.csv", template)
    report = await run_evaluation(service, template, dataset, ["demo:echo"], origin=RunOrigin(user="ann"))
    assert report.evaluation_id is not None
    stored = await service.store.get_evaluation(report.evaluation_id)  # type: ignore[union-attr]
    assert stored is not None
    assert (stored.template, stored.template_hash, stored.dataset, stored.models, stored.user, stored.status) == (
        "echo", template.content_hash, "cases.csv", ["demo:echo"], "ann", "completed")
    assert len(stored.dataset_hash) == 12
    cells = {c.case_id: c for c in stored.cells}
    assert cells["one"].passed and not cells["two"].passed and "hello" in cells["two"].reason
    for cell in cells.values():
        record = await stored_when_ended(service, cell.run_id)  # type: ignore[arg-type]
        assert (record.source, record.evaluation_id, record.user) == ("evaluation", report.evaluation_id, "ann")


async def test_keys_are_masked_before_an_event_enters_the_log_or_the_store(store_url: str) -> None:
    key = "sk-proj-SECRET0123456789abcdef"
    service = await LLMService.open(settings(store_url, OPENAI_API_KEY=key))
    try:
        run = service.start(RunRequest(model="demo:echo", prompt=f"my key is {key} ok", system=f"use {key}"))
        terminal = await run.wait()
        assert key not in terminal.text and "***" in terminal.text
        assert all(key not in event.model_dump_json() for event in run.log)
        record = await stored_when_ended(service, run.id)
        assert key not in record.model_dump_json()
        assert "my key is *** ok" in record.prompt
        assert all(key not in event.model_dump_json() for event in await service.store.events(run.id))  # type: ignore[union-attr]
    finally:
        await service.aclose()


async def test_a_deployment_can_stop_runs_nobody_watches(store_url: str) -> None:
    slow = settings(store_url, demo={"first_token_delay": 0, "tokens_per_second": 20},
                    runs={"stop_unwatched_after": 0.4})
    service = await LLMService.open(slow)
    try:
        unwatched = service.start(RunRequest(model="demo:assistant", prompt="Nobody reads this."))
        watched = service.start(RunRequest(model="demo:assistant", prompt="Someone reads this."))
        reader = watched.events()
        await anext(reader)  # reading from now on
        async with asyncio.timeout(5):
            assert (await unwatched.wait()).kind == "stopped"
            assert not watched.done  # its reader keeps it going
            await reader.aclose()  # the reader leaves: it is stopped in turn
            assert (await watched.wait()).kind == "stopped"
    finally:
        await service.aclose()


async def test_by_default_a_run_nobody_watches_finishes(service: LLMService) -> None:
    run = service.start(RunRequest(model="demo:echo", prompt="finish without me"))
    assert (await run.wait()).kind == "completed"


async def test_a_caller_may_flush_while_the_writer_writes(service: LLMService) -> None:
    runs = [service.start(RunRequest(model="demo:echo", prompt=f"run {i}")) for i in range(20)]
    await asyncio.gather(*(run.wait() for run in runs))
    assert service.recorder is not None
    await asyncio.gather(*(service.recorder.flush() for _ in range(5)))
    for run in runs:
        assert (await service.store.get_run(run.id)).status == "completed"  # type: ignore[union-attr]
    assert service.running() == [] and service.runs() == []


async def test_callers_flushing_together_share_a_write_and_find_their_run_stored(store_url: str) -> None:
    """Each request of a replica waits for its new run's record (api.py): 50 at once must not mean 50
    writes one after another, while the runs already streaming always have something new to write."""
    service = await LLMService.open(settings(store_url, demo={"first_token_delay": 0.0, "tokens_per_second": 200}))
    recorder, store = service.recorder, service.store
    assert recorder is not None and store is not None
    saves = 0
    save = store.save

    async def counted_save(*args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal saves
        saves += 1
        await asyncio.sleep(0.01)  # a write takes a while: runs stream meanwhile
        return await save(*args, **kwargs)

    async def start_and_wait_for_its_record(i: int) -> bool:
        await asyncio.sleep(i * 0.001)  # callers arrive one after another, while a write is under way
        run = service.start(RunRequest(model="demo:assistant", prompt=f"story {i}"))
        await recorder.flush()
        return await store.get_run(run.id) is not None

    try:
        store.save = counted_save  # type: ignore[method-assign]
        stored = await asyncio.gather(*(start_and_wait_for_its_record(i) for i in range(50)))
        assert all(stored)
        assert saves <= 10, saves  # 50 one after another before
    finally:
        for run in service.running():
            run.cancel()
        await service.aclose()


async def test_a_caller_giving_up_on_a_flush_does_not_cut_the_write_short(service: LLMService) -> None:
    """A request's wait for its record has a timeout (api.py): the write it started must still happen,
    else the new run's record is lost and its events, written later, have no run to belong to."""
    recorder, store = service.recorder, service.store
    assert recorder is not None and store is not None
    save = store.save

    async def slow_save(*args, **kwargs):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.3)
        return await save(*args, **kwargs)

    store.save = slow_save  # type: ignore[method-assign]
    run = service.start(RunRequest(model="demo:echo", prompt="kept though nobody waited"))
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await recorder.flush()
    await run.wait()
    record = await stored_when_ended(service, run.id)
    assert record.text == "kept though nobody waited"
    assert await store.events(run.id) == run.log


async def test_a_name_longer_than_its_column_is_cut_to_fit(store_url: str) -> None:
    # An endpoint that accepts any model name: a user can type a name longer than the column.
    service = await LLMService.open(settings(
        store_url, endpoints={"local": {"base_url": "http://127.0.0.1:1/v1", "models": []}},
        retry={"max_attempts": 1}, timeouts={"connect": 1, "first_token": 2, "total": 3},
    ))
    try:
        huge = service.start(RunRequest(model="local:" + "m" * 400, prompt="hi"))
        normal = service.start(RunRequest(model="demo:echo", prompt="kept anyway"))
        await asyncio.gather(huge.wait(), normal.wait())
        record = await stored_when_ended(service, normal.id)
        assert record.text == "kept anyway"
        stored_huge = await stored_when_ended(service, huge.id)
        assert stored_huge.model == ("local:" + "m" * 400)[:300] and stored_huge.status == "failed"
        later = service.start(RunRequest(model="demo:echo", prompt="and after it"))
        await later.wait()
        assert (await stored_when_ended(service, later.id)).text == "and after it"
        assert service.store_problem is None
    finally:
        await service.aclose()


async def test_a_run_the_database_refuses_does_not_stop_the_others_being_kept(store_url: str) -> None:
    store = await open_store(store_url)
    service = LLMService(settings(store_url))

    class Refusing(FlakyStore):
        """The real store, refusing (like a constraint would) every batch holding one poisoned run."""

        poisoned: ClassVar[set[str]] = set()

        async def save(self, new, updates):  # type: ignore[no-untyped-def]
            from sqlalchemy.exc import IntegrityError

            if self.poisoned & ({r.id for r in new} | {u.run_id for u in updates}):
                raise IntegrityError("INSERT …", {}, Exception("duplicate key value violates unique constraint"))
            await self.store.save(new, updates)

    refusing = Refusing(store)
    await service.attach_store(refusing)  # type: ignore[arg-type]
    try:
        poisoned = service.start(RunRequest(model="demo:echo", prompt="never kept"))
        Refusing.poisoned.add(poisoned.id)
        normal = service.start(RunRequest(model="demo:echo", prompt="kept anyway"))
        await asyncio.gather(poisoned.wait(), normal.wait())
        assert (await stored_when_ended(service, normal.id)).text == "kept anyway"
        later = service.start(RunRequest(model="demo:echo", prompt="and after it"))
        await later.wait()
        assert (await stored_when_ended(service, later.id)).text == "and after it"
        assert await store.get_run(poisoned.id) is None
        assert service.get(poisoned.id) is None  # dropped from the writer, not retried forever
    finally:
        await service.aclose()
