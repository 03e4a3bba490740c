"""Keeps every run in the store without slowing its stream.

A run's task only appends events to its in-memory log; the recorder is told of each event and
collects them. One writer task saves everything collected, for every run at once, in one
transaction: at least once per `store.flush_interval` (1 s), and at once when a run starts or ends.
A crash loses at most that interval of text. The writer also beats this process's heartbeat,
marks the runs of processes that stopped beating `interrupted`, and applies the retention setting.

A store that fails does not fail the runs: what could not be written is kept and tried again at the
next flush (up to a bound), the failure is logged, and `problem` says it once for the UI to show.

A process stalled longer than `store.stale_after` (a frozen VM, a partition from the database) finds
its runs ended by a survivor (`interrupted`) when it writes again: the store refuses their later
progress (the stored ending stands), and each such run that still runs here ends `interrupted` too,
since nothing more of it would be kept (logged once per run).

Others may watch every event of every run through the recorder (`observe`): the replicas' Redis
publisher does (`llmtool/replicas`). An observer is told synchronously, on the run's loop, like the
recorder itself: it must only collect, never wait.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from llmtool.events import (
    Completed,
    Failed,
    Interrupted,
    ReasoningDelta,
    RunEvent,
    Stopped,
    TextDelta,
    Validated,
    is_terminal,
)
from llmtool.service.runs import Listener, Run
from llmtool.settings import StoreSettings
from llmtool.store import (
    Owner,
    RunOrigin,
    RunRecord,
    RunStore,
    RunUpdate,
    TemplateVersion,
    ValidationOutcome,
)
from llmtool.store.sql import this_host

log = logging.getLogger(__name__)

MAX_PENDING_EVENTS = 200_000  # while the store is down: beyond this, the oldest progress is dropped
DAY = 86400.0
ENDED_ELSEWHERE = ("this server stalled and another one marked the run interrupted meanwhile; "
                   "the text kept is what was stored before the stall")


@dataclass
class _Pending:
    run: Run
    start: int  # position of the first event not yet written
    events: list[RunEvent] = field(default_factory=list)
    columns: dict[str, Any] = field(default_factory=dict)
    ended: bool = False
    refused: bool = False  # ended in the store by another process: nothing more is written


def new_owner() -> Owner:
    return Owner(id=f"{this_host()}:{os.getpid()}:{secrets.token_hex(3)}", host=this_host(), pid=os.getpid(),
                 started_at=time.time())


def run_record(run: Run, origin: RunOrigin, owner: Owner, mask: Callable[[str], str] = str) -> RunRecord:
    """The record a run starts with; `mask` takes keys out of what the user sent (a pasted key)."""
    request = run.request
    dumped = request.model_dump(mode="json", exclude_defaults=True)
    for message in dumped.get("messages", []):
        message["content"] = mask(message["content"])
    if "system" in dumped:
        dumped["system"] = mask(dumped["system"])
    return RunRecord(
        id=run.id,
        user=origin.user,
        source=origin.source,
        conversation_id=origin.conversation_id,
        position=origin.position,
        evaluation_id=origin.evaluation_id,
        model=run.model.id,
        request=dumped,
        prompt=mask(request.messages[-1].content),
        system=dumped.get("system"),
        template=request.template,
        template_hash=request.template_hash,
        variables=request.variables,
        created_at=run.created_at,
        owner=owner.id,
    )


class RunRecorder:
    def __init__(self, store: RunStore, settings: StoreSettings, retention_days: float | None,
                 on_saved: Callable[[str], None] = lambda run_id: None, mask: Callable[[str], str] = str) -> None:
        self.store = store
        self._mask = mask
        self.settings = settings
        self.retention_days = retention_days
        self.owner = new_owner()
        self.problem: str | None = None  # the last write failure, until a write succeeds again
        self._on_saved = on_saved  # a run's terminal event is in the store: memory may let it go
        self._new: list[RunRecord] = []
        self._templates: dict[str, TemplateVersion] = {}
        self._pending: dict[str, _Pending] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._writing: asyncio.Task[None] | None = None  # the write under way: the writer's, or a caller's
        self._asked = 0  # flushes asked for so far …
        self._written = 0  # … and how many of them a finished write covered
        self._closing = False
        self._observers: list[Listener] = []  # told of every event of every run tracked from now on

    async def start(self) -> list[str]:
        """Beat the first heartbeat, end the runs of dead processes, then write in the background.
        Returns the ids of the runs found interrupted."""
        await self.store.heartbeat(self.owner)
        interrupted = await self.store.interrupt_orphans(self.owner, self.settings.stale_after)
        await self._purge()
        self._task = asyncio.get_running_loop().create_task(self._write_loop(), name="run-recorder")
        return interrupted

    def observe(self, listener: Listener) -> None:
        """Tell `listener` every event of every run tracked from now on (after the recorder itself)."""
        self._observers.append(listener)

    # -- told by the service, on the event loop, never waiting -----------------------------------
    def track(self, run: Run, origin: RunOrigin) -> None:
        self._new.append(run_record(run, origin, self.owner, self._mask))
        source = run.request.template_source
        if run.request.template_hash and source is not None and run.request.template:
            self._templates[run.request.template_hash] = TemplateVersion(
                hash=run.request.template_hash, name=run.request.template, content=source
            )
        self._pending[run.id] = _Pending(run=run, start=0)
        run.listeners.append(self._on_event)
        run.listeners.extend(self._observers)
        self._wake.set()

    def _on_event(self, run: Run, event: RunEvent) -> None:
        pending = self._pending.get(run.id)
        if pending is None:
            return
        if pending.refused:
            if is_terminal(event):
                self._wake.set()  # the writer lets it go (`_release`)
            return
        pending.events.append(event)
        if isinstance(event, TextDelta):
            pending.columns["text"] = None  # filled from the run at write time (once, not per delta)
        elif isinstance(event, ReasoningDelta) and event.text:
            pending.columns["reasoning"] = None
        elif isinstance(event, Validated):
            pending.columns["validation"] = ValidationOutcome(
                passed=event.passed, problems=event.problems, rules_checked=event.rules_checked
            )
        if is_terminal(event):
            pending.columns.update(_ending(event))
            pending.ended = True
            self._wake.set()  # the terminal event is written at once

    # -- the writer --------------------------------------------------------------------------------
    async def _write_loop(self) -> None:
        next_beat = time.monotonic() + self.settings.heartbeat_interval
        next_purge = time.monotonic() + DAY
        while True:
            try:
                async with asyncio.timeout(self.settings.flush_interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
            if not self._closing:
                # Let a burst settle: events arriving in the same instant share one write.
                await asyncio.sleep(min(0.02, self.settings.flush_interval))
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # a bug of ours: keep writing the runs that follow
                log.exception("the run store writer failed")
            if self._closing:
                return
            now = time.monotonic()
            if now >= next_beat:
                next_beat = now + self.settings.heartbeat_interval
                await self._beat()
            if now >= next_purge:
                next_purge = now + DAY
                await self._purge()

    async def flush(self) -> None:
        """Write everything collected so far (waiting for a write under way to finish first).

        One write at a time, in a task of its own, so a caller that gives up (a request's timeout, a
        client gone) never cuts a write in half: the records it had taken would be lost while their
        events, still tracked, came later without them. Callers that wait together share one write
        (group commit): a write that began after a caller asked holds everything that caller collected
        (with several replicas each new run's request waits for its record: one write each, 100 of
        them queued behind one another's)."""
        self._asked += 1
        asked = self._asked
        while self._written < asked:
            if self._writing is None or self._writing.done():
                self._writing = asyncio.get_running_loop().create_task(self._write(), name="run-recorder-write")
            await asyncio.shield(self._writing)

    async def _write(self) -> None:
        covers = self._asked
        await self._flush()
        self._written = max(self._written, covers)

    async def _flush(self) -> None:
        new, templates = self._new, self._templates
        self._new, self._templates = [], {}
        taken: list[tuple[_Pending, RunUpdate]] = []
        for pending in [p for p in self._pending.values() if p.refused and p.run.done]:
            self._release(pending)
        for pending in self._pending.values():
            if not pending.events and not pending.columns:
                continue
            columns, pending.columns = pending.columns, {}
            if "text" in columns and columns["text"] is None:
                columns["text"] = pending.run.text_so_far()
            if "reasoning" in columns and columns["reasoning"] is None:
                columns["reasoning"] = pending.run.reasoning_so_far()
            update = RunUpdate(run_id=pending.run.id, start=pending.start, events=pending.events, columns=columns)
            pending.events = []
            pending.start += len(update.events)
            taken.append((pending, update))
        if not new and not taken and not templates:
            return
        try:
            for version in templates.values():
                await self.store.save_template(version)
            ended = await self.store.save(new, [update for _, update in taken])
        except Exception as error:  # the store is down or refused: the runs go on
            if not refused(error):
                self._keep_for_retry(new, templates, taken, error)
                return
            # One run's data was refused: that must not stop every other run from being kept.
            await self._save_one_by_one(new, taken, error)
        else:
            if self.problem is not None:
                log.warning("the run store works again")
            self.problem = None
            self._ended_elsewhere(ended or ())  # (a store of another make may return None: nothing refused)
        for pending, _ in taken:
            if pending.ended and not pending.events and not pending.columns:
                self._release(pending)

    def _release(self, pending: _Pending) -> None:
        """The run's end is in the store (its own, or the one another process wrote): stop collecting it."""
        if self._pending.get(pending.run.id) is not pending:
            return
        del self._pending[pending.run.id]
        pending.run.listeners.remove(self._on_event)
        self._on_saved(pending.run.id)

    def _ended_elsewhere(self, run_ids: Iterable[str]) -> None:
        """The store refused the progress of these runs: another process ended them while this one was
        stalled. Write nothing more of them; end those still running here as the store has them."""
        for run_id in run_ids:
            pending = self._pending.get(run_id)
            if pending is None or pending.refused:
                continue
            pending.refused = True
            pending.events, pending.columns = [], {}
            still_running = pending.run.interrupt(ENDED_ELSEWHERE)
            log.warning("run %s was marked interrupted by another process while this one was stalled (no heartbeat "
                        "for store.stale_after): the store keeps that ending, not what this process streamed since%s",
                        run_id, "; it is stopped here too" if still_running else "")
            if not still_running:
                self._release(pending)

    async def _save_one_by_one(self, new: list[RunRecord], taken: list[tuple[_Pending, RunUpdate]],
                               error: Exception) -> None:
        log.error("the run store refused a batch of runs (%s); saving them one by one", error)
        updates = {update.run_id: update for _, update in taken}
        batches = [([record], [updates.pop(record.id)] if record.id in updates else []) for record in new]
        batches += [([], [update]) for update in updates.values()]
        for records, changes in batches:
            try:
                self._ended_elsewhere(await self.store.save(records, changes) or ())
            except Exception as failure:
                if not refused(failure):  # the store went away meanwhile: keep it all for later
                    self.problem = "history is not being saved right now (the run store failed); answers still stream"
                    self._new = records + self._new
                    for pending, update in ((self._pending.get(u.run_id), u) for u in changes):
                        if pending is not None:
                            pending.events = update.events + pending.events
                            pending.columns = update.columns | pending.columns
                            pending.start = update.start
                    continue
                run_id = records[0].id if records else changes[0].run_id
                log.error("run %s could not be kept (the database refused it: %s); dropped", run_id, failure)

    def _keep_for_retry(self, new: list[RunRecord], templates: dict[str, TemplateVersion],
                        taken: list[tuple[_Pending, RunUpdate]], error: Exception) -> None:
        self._new = new + self._new
        self._templates = templates | self._templates
        for pending, update in taken:  # put back in front of what arrived meanwhile
            pending.events = update.events + pending.events
            pending.columns = update.columns | pending.columns
            pending.start = update.start
        if self.problem is None:
            log.error("could not write runs to the store; will retry: %s", error)
        self.problem = "history is not being saved right now (the run store failed); answers still stream"
        waiting = sum(len(p.events) for p in self._pending.values())
        if waiting > MAX_PENDING_EVENTS:
            # Keep memory bounded: drop the oldest progress of running runs (their text column
            # still gets written), keep endings.
            for pending in self._pending.values():
                if not pending.ended:
                    pending.start += len(pending.events)
                    pending.events = []
                    pending.columns.setdefault("text", None)
            log.error("the run store has been failing for a while; dropped unsaved events of running runs")

    async def _beat(self) -> None:
        try:
            await self.store.heartbeat(self.owner)
            await self.store.interrupt_orphans(self.owner, self.settings.stale_after)
        except Exception:
            log.warning("could not beat the heartbeat in the run store", exc_info=True)

    async def _purge(self) -> None:
        if self.retention_days is None:
            return
        try:
            removed = await self.store.purge(time.time() - self.retention_days * DAY)
        except Exception:
            log.warning("could not delete old runs", exc_info=True)
            return
        if removed:
            log.info("deleted %d runs older than %g days", removed, self.retention_days)

    async def aclose(self) -> None:
        """Write what is left, stop the writer, and say this process is gone."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=10)
            except (TimeoutError, Exception):
                log.warning("the run store writer did not finish cleanly", exc_info=True)
            self._task = None
        await self.flush()
        try:
            await self.store.retire(self.owner)
        except Exception:
            log.warning("could not remove this process from the run store", exc_info=True)


def refused(error: BaseException) -> bool:
    """The database refused the data (too long, a duplicate…), as opposed to being unreachable:
    trying the same rows again would fail again."""
    if isinstance(error, (IntegrityError, DataError)):
        return True
    if isinstance(error, DBAPIError) and not error.connection_invalidated:
        cause = getattr(error.orig, "__cause__", None) or error.orig
        state = str(getattr(cause, "sqlstate", "") or "")
        return state[:2] in ("22", "23")  # data exception, integrity constraint violation
    return False


def _ending(event: RunEvent) -> dict[str, Any]:
    columns: dict[str, Any] = {"status": event.kind, "ended_at": time.time()}
    if isinstance(event, (Completed, Stopped, Failed)):
        columns["text"] = event.text
        columns["reasoning"] = event.reasoning
        columns["metrics"] = event.metrics
    if isinstance(event, Failed):
        columns["error_kind"] = event.error_kind
        columns["error_message"] = event.message
    if isinstance(event, Interrupted):  # a live run ended by its server's shutdown (LLMService.drain)
        columns["text"] = event.text
        columns["metrics"] = event.metrics
        columns["error_kind"] = "interrupted"
        columns["error_message"] = event.message
    return columns
