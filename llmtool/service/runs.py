"""A run: one request's ordered event log, read by any number of consumers from any position.

The run's own task (started by the service) appends events; consumers only read, so a consumer that
goes away neither stops nor loses the run. `cancel()` is the one way to stop it. A run belongs to
the event loop that started it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator, Callable
from typing import Literal

from llmtool.catalog import ModelInfo
from llmtool.events import (
    Completed,
    Failed,
    Interrupted,
    Metrics,
    ReasoningDelta,
    RunEvent,
    Stopped,
    TerminalEvent,
    TextDelta,
    is_terminal,
)
from llmtool.service.requests import RunRequest

RunStatus = Literal["running", "completed", "stopped", "failed", "interrupted"]
Listener = Callable[["Run", RunEvent], None]
log = logging.getLogger(__name__)


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


class Run:
    def __init__(self, request: RunRequest, model: ModelInfo, run_id: str | None = None) -> None:
        self.id = run_id or new_run_id()
        self.request = request
        self.model = model
        self.created_at = time.time()
        self.log: list[RunEvent] = []
        # Told of every event as it is appended, synchronously (the store's recorder): they must
        # only collect, never wait.
        self.listeners: list[Listener] = []
        self.readers = 0  # consumers inside events() now
        self.unwatched_since: float | None = time.monotonic()  # None while someone reads
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Set by `interrupt`: the process stops, the run ends `interrupted` with this message.
        self.interrupting: str | None = None

    # -- written by the run's task -------------------------------------------------------------
    def append(self, event: RunEvent) -> None:
        if self.done:
            raise RuntimeError(f"run {self.id} already ended with {self.log[-1].kind}")
        self.log.append(event)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        for listener in self.listeners:  # (none adds or removes itself while being told)
            try:
                listener(self, event)
            except Exception:  # a listener's bug must not end the run
                log.exception("a listener of run %s failed", self.id)

    def attach(self, task: asyncio.Task[None]) -> None:
        self._task = task
        task.add_done_callback(self._ensure_ended)

    def _ensure_ended(self, task: asyncio.Task[None]) -> None:
        """A task cancelled before its first step never ran its own handlers: end the log here."""
        if self.done:
            return
        if task.cancelled() and self.interrupting is not None:
            self.append(Interrupted(message=self.interrupting, text=self.text_so_far(), metrics=Metrics()))
        elif task.cancelled():
            self.append(Stopped(text=self.text_so_far(), metrics=Metrics()))
        else:
            error = task.exception()
            self.append(Failed(
                error_kind="internal",
                message=f"llmtool failed unexpectedly ({type(error).__name__}); the server log has the details",
                retryable=False,
                text=self.text_so_far(),
                metrics=Metrics(),
            ))

    def text_so_far(self) -> str:
        return "".join(e.text for e in self.log if isinstance(e, TextDelta))

    def reasoning_so_far(self) -> str:
        return "".join(e.text for e in self.log if isinstance(e, ReasoningDelta))

    # -- read by anyone ------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return bool(self.log) and is_terminal(self.log[-1])

    @property
    def terminal(self) -> TerminalEvent | None:
        last = self.log[-1] if self.log else None
        return last if isinstance(last, (Completed, Stopped, Failed, Interrupted)) else None

    @property
    def status(self) -> RunStatus:
        terminal = self.terminal
        return terminal.kind if terminal else "running"

    async def events(self, after: int = 0) -> AsyncGenerator[RunEvent, None]:
        """Every event from index `after` on, waiting for new ones until the run ends. While it is
        being read the run counts as watched (see `settings.runs.stop_unwatched_after`)."""
        position = max(after, 0)
        self._watched(+1)
        try:
            while True:
                changed = self._changed
                while position < len(self.log):
                    event = self.log[position]
                    position += 1
                    yield event
                if self.done:
                    return
                await changed.wait()
        finally:
            self._watched(-1)

    def _watched(self, change: int) -> None:
        self.readers += change
        self.unwatched_since = None if self.readers else time.monotonic()

    async def wait(self) -> TerminalEvent:
        while self.terminal is None:
            await self._changed.wait()
        return self.terminal

    def cancel(self) -> bool:
        """Stop the run: the provider connection is closed and a `stopped` event ends the log.

        Returns False when the run had already ended.
        """
        if self.done or self._task is None:
            return False
        self._task.cancel()
        return True

    def interrupt(self, message: str) -> bool:
        """End the run because this process stops (draining ran out of time): like `cancel`, but the
        log ends `interrupted` with `message`, the text written so far kept. False if already ended."""
        if self.done or self._task is None:
            return False
        self.interrupting = message
        self._task.cancel()
        return True
