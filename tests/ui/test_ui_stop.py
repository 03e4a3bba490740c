"""Stop and Clear always answer: a run (or evaluation) that ignores its cancellation is waited for
at most STOP_GRACE, then the page goes idle anyway."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest

from llmtool.ui import handlers as chat_handlers
from llmtool.ui.compare import CompareHandlers
from llmtool.ui.evaluate import EvalJob
from llmtool.ui.handlers import ChatHandlers, Update, wait_ended

GRACE = 0.1
BOUND = 5.0  # generous: the point is "returns", not how fast


class StuckRun:
    """A run whose end never comes (a provider client that ignores the cancellation)."""

    def __init__(self, run_id: str = "run-1") -> None:
        self.id = run_id
        self.cancelled = False
        self.model = SimpleNamespace(id="local:m")
        self.log: list = []
        self.request = SimpleNamespace(template=None, template_hash=None,
                                       validation=SimpleNamespace(mode="stream"))

    def cancel(self) -> bool:
        self.cancelled = True
        return True

    async def wait(self) -> None:
        await asyncio.Event().wait()


def context_with(*runs: StuckRun) -> SimpleNamespace:
    by_id = {run.id: run for run in runs}

    async def wait_stream_ended(run_id: str, timeout: float) -> None:
        return None

    return SimpleNamespace(service=SimpleNamespace(get=by_id.get), wait_stream_ended=wait_stream_ended,
                           redact=lambda text: text)


@pytest.fixture(autouse=True)
def short_grace(monkeypatch) -> None:
    monkeypatch.setattr(chat_handlers, "STOP_GRACE", GRACE)


async def timed(awaitable):
    started = time.monotonic()
    result = await awaitable
    return result, time.monotonic() - started


async def test_wait_ended_gives_up_after_the_grace() -> None:
    ended, elapsed = await timed(wait_ended(StuckRun(), StuckRun("run-2")))
    assert ended is False and elapsed < BOUND


async def test_chat_stop_returns_an_idle_page_when_the_run_does_not_end() -> None:
    run = StuckRun()
    outputs, elapsed = await timed(ChatHandlers(context_with(run)).stop(run.id, []))
    assert run.cancelled and elapsed < BOUND
    assert outputs == Update(run_id="", running=False).outputs()


async def test_chat_clear_returns_an_empty_idle_page_when_the_run_does_not_end() -> None:
    run = StuckRun()
    outputs, elapsed = await timed(ChatHandlers(context_with(run)).clear(run.id))
    assert run.cancelled and elapsed < BOUND
    assert outputs == Update(chat=[], turns=[], run_id="", status="", validation="", running=False,
                             conversation="").outputs()  # Clear starts a new conversation


async def test_compare_stop_returns_an_idle_page_when_the_runs_do_not_end() -> None:
    runs = [StuckRun("a"), StuckRun("b")]
    outputs, elapsed = await timed(CompareHandlers(context_with(*runs)).stop(["a", "b", "", ""]))
    assert all(run.cancelled for run in runs) and elapsed < BOUND
    run_button, stop_button = outputs[-3:-1]  # then what the browser keeps
    assert run_button["visible"] is True and stop_button["visible"] is False


async def test_an_evaluation_that_ignores_its_cancellation_is_not_waited_for_forever() -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue

    job = object.__new__(EvalJob)  # only the task matters to cancel()
    job.task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)  # running, inside its try
    try:
        _, elapsed = await timed(job.cancel())
        assert elapsed < BOUND and not job.task.done()
    finally:
        release.set()
        await job.task
