"""A run: one request's ordered event log, read by any number of consumers from any position.

The run's own task (started by the service) appends events; consumers only read, so a consumer that
goes away neither stops nor loses the run. `cancel()` is the one way to stop it. A run belongs to
the event loop that started it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator
from typing import Literal

from llmtool.catalog import ModelInfo
from llmtool.events import (
    Completed,
    Failed,
    Metrics,
    RunEvent,
    Stopped,
    TerminalEvent,
    TextDelta,
    is_terminal,
)
from llmtool.service.requests import RunRequest

RunStatus = Literal["running", "completed", "stopped", "failed"]


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


class Run:
    def __init__(self, request: RunRequest, model: ModelInfo, run_id: str | None = None) -> None:
        self.id = run_id or new_run_id()
        self.request = request
        self.model = model
        self.created_at = time.time()
        self.log: list[RunEvent] = []
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- written by the run's task -------------------------------------------------------------
    def append(self, event: RunEvent) -> None:
        if self.done:
            raise RuntimeError(f"run {self.id} already ended with {self.log[-1].kind}")
        self.log.append(event)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def attach(self, task: asyncio.Task[None]) -> None:
        self._task = task
        task.add_done_callback(self._ensure_ended)

    def _ensure_ended(self, task: asyncio.Task[None]) -> None:
        """A task cancelled before its first step never ran its own handlers: end the log here."""
        if self.done:
            return
        if task.cancelled():
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

    # -- read by anyone ------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return bool(self.log) and is_terminal(self.log[-1])

    @property
    def terminal(self) -> TerminalEvent | None:
        last = self.log[-1] if self.log else None
        return last if isinstance(last, (Completed, Stopped, Failed)) else None

    @property
    def status(self) -> RunStatus:
        terminal = self.terminal
        return terminal.kind if terminal else "running"

    async def events(self, after: int = 0) -> AsyncGenerator[RunEvent, None]:
        """Every event from index `after` on, waiting for new ones until the run ends."""
        position = max(after, 0)
        while True:
            changed = self._changed
            while position < len(self.log):
                event = self.log[position]
                position += 1
                yield event
            if self.done:
                return
            await changed.wait()

    async def wait(self) -> TerminalEvent:
        async for _ in self.events(after=len(self.log)):
            pass
        assert self.terminal is not None
        return self.terminal

    def cancel(self) -> bool:
        """Stop the run: the provider connection is closed and a `stopped` event ends the log.

        Returns False when the run had already ended.
        """
        if self.done or self._task is None:
            return False
        self._task.cancel()
        return True
