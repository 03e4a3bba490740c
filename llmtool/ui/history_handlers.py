"""The History tab's handlers: list, open, re-run, stop, delete and export stored runs.

Every handler returns (or yields) `Update(...).outputs()`: one value per output of the tab, in the
order of `HistoryView.outputs` (history.py), `gr.skip()` for what it leaves alone. With logins
(`request.username`) every query is limited to the user's runs and someone else's run id answers
"not found". Store errors become a message in the tab (the traceback goes to the log).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, fields
from typing import Any, cast

import gradio as gr

from llmtool.errors import UsageError
from llmtool.events import RunEvent
from llmtool.service import Run, RunRequest
from llmtool.store import RunOrigin, RunQuery, RunRecord, RunStore, StoreError
from llmtool.store.export import export_runs
from llmtool.store.records import ENDED_STATUSES
from llmtool.ui.handlers import STOP_GRACE, wait_ended
from llmtool.ui.handlers import login as login_of
from llmtool.ui.history_render import (
    EVENT_HEADERS,
    HEADERS,
    ID_COLUMN,
    answer_for,
    date_range,
    events_rows,
    metrics_markdown,
    page_line,
    request_markdown,
    status_markdown,
    table_row,
    template_markdown,
    title_markdown,
    validation_markdown,
)
from llmtool.ui.inputs import shown
from llmtool.ui.restore import model_price_hint
from llmtool.ui.status import RunProgress, escape_markdown
from llmtool.ui.streams import Pace, batches
from llmtool.ui.template_fields import error_markdown
from llmtool.ui.transcript import answer_markdown, redacted, thought_details, turn_from_progress
from llmtool.web.context import AppContext

log = logging.getLogger(__name__)

PAGE_SIZE = 50
ANY = "(any)"
STATUSES = ["running", "completed", "stopped", "failed", "interrupted"]
NOT_KEPT = "Runs are not kept on this server (it has no run store), so there is no history to show."
UNEXPECTED = "llmtool failed unexpectedly; the server log has the details."
STORED_WAIT = 3.0  # how long a finished re-run waits for its record to reach the store


class NotFound(Exception):
    pass


def _brief(run_id: str) -> str:
    """A run id as said back: an id is 12 characters, a typed one may be a page long."""
    return run_id if len(run_id) <= 64 else run_id[:40] + "…"


@dataclass
class Update:
    """One page update of the tab; None leaves that output as it is. The order of the fields is
    the order of the outputs (`HistoryView.outputs`)."""

    table: dict | None = None
    page: str | None = None
    message: str | None = None
    list_state: dict | None = None
    newer: bool | None = None  # interactive
    older: bool | None = None
    run_id: str | None = None  # the Run id box
    selected_run: str | None = None
    selected_conversation: str | None = None
    title: str | None = None
    status: str | None = None
    answer: str | None = None
    validation: str | None = None
    metrics: str | None = None
    request: str | None = None
    template: str | None = None  # "" hides the template accordion
    events: dict | None = None
    actions: bool | None = None  # the actions row (a run is open)
    has_conversation: bool | None = None  # Open in Chat, Delete conversation
    pending: str | None = None  # "run" | "conversation" | "": the confirmation step
    running: bool | None = None  # a re-run streams: Stop shown, the other actions hidden
    rerun_id: str | None = None
    export: str | None = None  # a file to download

    def outputs(self) -> tuple[Any, ...]:
        def value(v: Any) -> Any:
            return gr.skip() if v is None else v

        def shown(v: bool | None) -> Any:
            return gr.skip() if v is None else gr.update(visible=v)

        def enabled(v: bool | None) -> Any:
            return gr.skip() if v is None else gr.update(interactive=v)

        pending: tuple[Any, Any, Any] = (gr.skip(), gr.skip(), gr.skip())
        if self.pending is not None:
            label = {"run": "Confirm: delete this run",
                     "conversation": "Confirm: delete every run of this conversation"}.get(self.pending, "Confirm")
            pending = (self.pending, gr.update(visible=bool(self.pending)), gr.update(value=label))
        running: tuple[Any, Any] = (gr.skip(), gr.skip())
        if self.running is not None:
            running = (gr.update(visible=not self.running), gr.update(visible=self.running))
        template: tuple[Any, Any] = (gr.skip(), gr.skip())
        if self.template is not None:
            template = (gr.update(visible=bool(self.template)), self.template)
        export: Any = gr.skip() if self.export is None else gr.update(value=self.export or None,
                                                                       visible=bool(self.export))
        return (
            value(self.table), value(self.page), value(self.message), value(self.list_state),
            enabled(self.newer), enabled(self.older),
            value(self.run_id), value(self.selected_run), value(self.selected_conversation),
            value(self.title), value(self.status), value(self.answer), value(self.validation),
            value(self.metrics), value(self.request), *template, value(self.events),
            shown(self.actions), shown(self.has_conversation), shown(self.has_conversation),
            *pending, *running, value(self.rerun_id), export,
        )

    def merge(self, other: Update) -> Update:
        """This update with every field `other` sets."""
        for item in fields(other):
            if getattr(other, item.name) is not None:
                setattr(self, item.name, getattr(other, item.name))
        return self


def empty_detail() -> Update:
    return Update(run_id="", selected_run="", selected_conversation="", title="", status="", answer="",
                  validation="", metrics="", request="", template="", events=_events_table([]),
                  actions=False, has_conversation=False, pending="", running=False, rerun_id="")


class HistoryHandlers:
    def __init__(self, context: AppContext, page_size: int = PAGE_SIZE) -> None:
        self.context = context
        self.page_size = page_size
        self._reruns: dict[str, str | None] = {}  # re-run id → the login that started it

    # -- the list ---------------------------------------------------------------------------------
    async def search(
        self, status: str | None = None, model: str | None = None, template: str | None = None,
        user: str | None = None, date_from: str | None = None, date_to: str | None = None,
        search: str | None = None, request: gr.Request | None = None,
    ) -> tuple[Any, ...]:
        """The newest runs the filters select (status, model, template, user, dates YYYY-MM-DD
        (local, both included), whole words all required in the prompt or answer)."""
        try:
            since, until = date_range(date_from, date_to)
        except ValueError as error:
            return Update(message=error_markdown(str(error))).outputs()
        filters = {
            "status": _picked(status), "model": _picked(model), "template": _picked(template),
            "user": (user or "").strip() or None, "since": since, "until": until,
            "text": (search or "").strip() or None,
        }
        if filters["status"] is not None and filters["status"] not in STATUSES:
            return Update(message=error_markdown(f"unknown status {filters['status']!r}")).outputs()
        return (await self._page({"filters": filters, "cursors": [None]}, request)).outputs()

    async def older(self, state: dict | None, request: gr.Request | None = None) -> tuple[Any, ...]:
        """The next (older) page."""
        state = _state(state)
        if state["next"] is None:
            return Update().outputs()
        state["cursors"] = [*state["cursors"], state["next"]]
        return (await self._page(state, request)).outputs()

    async def newer(self, state: dict | None, request: gr.Request | None = None) -> tuple[Any, ...]:
        """The previous (newer) page."""
        state = _state(state)
        if len(state["cursors"]) > 1:
            state["cursors"] = state["cursors"][:-1]
        return (await self._page(state, request)).outputs()

    async def refresh(self, state: dict | None, request: gr.Request | None = None) -> tuple[Any, ...]:
        """The current page again (runs added or deleted since)."""
        return (await self._page(_state(state), request)).outputs()

    def reset(self) -> tuple[Any, ...]:
        """The filter boxes cleared (the list follows with `search`)."""
        return (ANY, ANY, ANY, "", "", "", "")

    async def _page(self, state: dict, request: gr.Request | None) -> Update:
        store = self._store()
        if store is None:
            return Update(message=NOT_KEPT, table=_table([]), page="", newer=False, older=False)
        query = self._query(state["filters"], request, before=state["cursors"][-1])
        try:
            page = await store.list_runs(query)
            total = await store.count_runs(query.model_copy(update={"before": None}))
        except StoreError as error:
            log.error("history: cannot read the run store: %s", error.message)
            return Update(message=error_markdown(self.context.redact(f"cannot read the runs: {error.message}")))
        except Exception:
            log.exception("history: listing runs failed")
            return Update(message=error_markdown(UNEXPECTED))
        state = {**state, "next": page.next_cursor}
        offset = (len(state["cursors"]) - 1) * self.page_size
        redact = self.context.redact
        return Update(
            table=_table([table_row(record, redact) for record in page.runs]),
            page=page_line(offset, len(page.runs), total) + self._scope(request),
            message="", list_state=state, newer=len(state["cursors"]) > 1, older=page.next_cursor is not None,
        )

    def _query(self, filters: dict, request: gr.Request | None, **extra: Any) -> RunQuery:
        login = self._limited_to(request)
        values = {**filters, **({"user": login} if login is not None else {})}
        return RunQuery(limit=self.page_size, **values, **extra)

    def _scope(self, request: gr.Request | None) -> str:
        login = login_of(request)
        if login is None:
            return ""
        if self._limited_to(request) is None:
            return " · every user's runs (admin)"
        return f" · yours only ({escape_markdown(self.context.redact(login))})"

    def _limited_to(self, request: gr.Request | None) -> str | None:
        """The login whose runs this user sees; None: every run (no logins, or a role that sees all)."""
        login = login_of(request)
        if login is None:
            return None
        principal = self.context.principal(login)
        return None if principal is not None and principal.sees_all_runs else login

    # -- one run --------------------------------------------------------------------------------
    async def open(self, run_id: str | None, request: gr.Request | None = None) -> tuple[Any, ...]:
        """Open a run by its id: request, answer, status, metrics, validation, events, template."""
        return (await self._open(run_id, request)).outputs()

    async def select(self, evt: gr.SelectData, request: gr.Request | None = None) -> tuple[Any, ...]:
        row = evt.row_value or []
        run_id = str(row[ID_COLUMN]) if len(row) > ID_COLUMN else ""
        return (await self._open(run_id, request)).outputs()

    async def _open(self, run_id: str | None, request: gr.Request | None) -> Update:
        run_id = (run_id or "").strip()
        if not run_id:
            return empty_detail().merge(Update(message=""))
        try:
            record = await self._owned(run_id, request)
            return await self._detail(record)
        except NotFound:
            missing = error_markdown(f"run {_brief(run_id)} not found")
            return empty_detail().merge(Update(run_id=run_id, message=missing))
        except StoreError as error:
            log.error("history: cannot open run %s: %s", run_id, error.message)
            return Update(message=error_markdown(self.context.redact(f"cannot read the run: {error.message}")))
        except Exception:
            log.exception("history: opening run %s failed", run_id)
            return Update(message=error_markdown(UNEXPECTED))

    async def _detail(self, record: RunRecord) -> Update:
        store = self._store()
        assert store is not None  # _owned found the record in it
        redact = self.context.redact
        events = await store.events(record.id)
        template = ""
        if record.template_hash:
            version = await store.template(record.template_hash)
            if version is not None:
                template = template_markdown(version.content, redact)
        return Update(
            message="", run_id=record.id, selected_run=record.id,
            selected_conversation=record.conversation_id or "",
            title=title_markdown(record, redact), status=status_markdown(record, redact),
            answer=answer_for(record, redact), validation=validation_markdown(record, redact),
            metrics=metrics_markdown(record.metrics, model_price_hint(self.context.service, record.model)),
            request=request_markdown(record, redact),
            template=template, events=_events_table(events_rows(events, redact)), actions=True,
            has_conversation=bool(record.conversation_id), pending="", running=False,
        )

    async def _owned(self, run_id: str, request: gr.Request | None) -> RunRecord:
        """The stored run, if this user may see it; NotFound otherwise (someone else's run too)."""
        store = self._store()
        if store is None:
            raise NotFound(run_id)
        record = await store.get_run(run_id)
        login = self._limited_to(request)
        if record is None or (login is not None and record.user != login):
            raise NotFound(run_id)
        return record

    # -- deleting ---------------------------------------------------------------------------------
    def ask_delete_run(self, selected: str | None) -> tuple[Any, ...]:
        return Update(pending="run" if selected else "").outputs()

    def ask_delete_conversation(self, selected: str | None) -> tuple[Any, ...]:
        return Update(pending="conversation" if selected else "").outputs()

    def cancel_delete(self) -> tuple[Any, ...]:
        return Update(pending="").outputs()

    async def delete(self, what: str | None, run_id: str | None, state: dict | None = None,
                     request: gr.Request | None = None) -> tuple[Any, ...]:
        """Delete a run (`what` "run") or every run of its conversation ("conversation"); the list
        refreshes."""
        what, run_id = (what or "").strip(), (run_id or "").strip()
        if what and what not in ("run", "conversation"):  # an API caller's word (the page sends its own)
            return Update(pending="", message=error_markdown(
                f"what to delete must be run or conversation; got {shown(what)}")).outputs()
        if not what or not run_id:
            return Update(pending="").outputs()
        store = self._store()
        try:
            record = await self._owned(run_id, request)
            assert store is not None
            if what == "run":
                await store.delete_run(record.id)
                said = f"Deleted run {record.id}."
            else:
                count = await self._delete_conversation(store, record, login_of(request))
                said = f"Deleted {count} run{'s' if count != 1 else ''} of conversation {record.conversation_id}."
        except NotFound:
            return Update(pending="", message=error_markdown(f"run {_brief(run_id)} not found")).outputs()
        except StoreError as error:
            log.error("history: cannot delete %s: %s", run_id, error.message)
            return Update(pending="", message=error_markdown(self.context.redact(f"cannot delete: {error.message}"))
                          ).outputs()
        except Exception:
            log.exception("history: deleting %s failed", run_id)
            return Update(pending="", message=error_markdown(UNEXPECTED)).outputs()
        listed = await self._page(_state(state), request)
        return empty_detail().merge(listed).merge(Update(message=escape_markdown(said))).outputs()

    async def _delete_conversation(self, store: RunStore, record: RunRecord, login: str | None) -> int:
        if not record.conversation_id:
            return int(await store.delete_run(record.id))
        if login is None:
            return await store.delete_conversation(record.conversation_id)
        runs = await store.conversation(record.conversation_id)
        if all(run.user == login for run in runs):
            return await store.delete_conversation(record.conversation_id)
        count = 0  # a conversation shared with someone else: only this user's runs go
        for run in runs:
            if run.user == login:
                count += int(await store.delete_run(run.id))
        return count

    # -- re-run -------------------------------------------------------------------------------
    async def rerun(self, run_id: str | None, state: dict | None = None,
                    request: gr.Request | None = None) -> AsyncIterator[tuple[Any, ...]]:
        """Start the run's request again as a new run (source "history") and stream it."""
        run_id = (run_id or "").strip()
        login = login_of(request)
        try:
            record = await self._owned(run_id, request)
            run_request = RunRequest.parse(record.request, allow_python_rules=True)  # as the service kept it
            run = self.context.service.start(run_request, RunOrigin(user=login, source="history"))
        except NotFound:
            yield Update(message=error_markdown(f"run {_brief(run_id)} not found"), running=False).outputs()
            return
        except UsageError as error:
            yield Update(message=error_markdown(self.context.redact(error.message)), running=False).outputs()
            return
        except StoreError as error:
            log.error("history: cannot re-run %s: %s", run_id, error.message)
            yield Update(message=error_markdown(self.context.redact(f"cannot read the run: {error.message}")),
                         running=False).outputs()
            return
        except Exception:
            log.exception("history: re-running %s failed", run_id)
            yield Update(message=error_markdown(UNEXPECTED), running=False).outputs()
            return
        self._reruns[run.id] = login
        loop = asyncio.get_running_loop()
        begun = loop.time()
        progress = RunProgress(model=run.model.id, buffered=run_request.validation.mode == "buffer")
        seen: list[RunEvent] = []
        self.context.stream_started(run.id)
        try:
            yield Update(
                message=escape_markdown(f"Re-running run {record.id} as run {run.id}…"), run_id=run.id,
                selected_run="", selected_conversation="", title=f"**Run {run.id}** · re-run of {record.id}",
                validation="", metrics="", events=_events_table([]), has_conversation=False, pending="",
                running=True, rerun_id=run.id, **self._live(run, progress, 0.0),
            ).outputs()
            live = Update()
            updates = batches(run.events(), Pace.of(self.context.settings))
            async with aclosing(updates):
                async for batch in updates:
                    for event in batch:
                        progress.apply(event)
                    seen.extend(batch)
                    live = Update(events=_events_table(events_rows(seen, self.context.redact)),
                                  validation=escape_markdown(self.context.redact(progress.validation_line())),
                                  **self._live(run, progress, loop.time() - begun))
                    if not progress.done:
                        yield live.outputs()
            final = await self._after_rerun(run, state, request)
            yield (final or live).merge(Update(running=False, rerun_id="")).outputs()
        finally:
            # A closed tab stops following the re-run, not the run (as in the Chat tab): it finishes
            # and is kept; Stop cancels it while the page follows it.
            self._reruns.pop(run.id, None)
            self.context.stream_ended(run.id)

    def _live(self, run: Run, progress: RunProgress, elapsed: float) -> dict[str, Any]:
        redact = self.context.redact
        turn = redacted(turn_from_progress("", progress, elapsed), redact)
        return {"status": escape_markdown(redact(progress.status_line(elapsed))),
                "answer": thought_details(turn.thought) + answer_markdown(turn)}

    async def _after_rerun(self, run: Run, state: dict | None, request: gr.Request | None) -> Update | None:
        """The finished re-run as stored, opened, and the list refreshed; None if the store is late."""
        store = self._store()
        if store is None:
            return None
        deadline = time.monotonic() + STORED_WAIT
        try:
            while True:
                record = await store.get_run(run.id)
                if record is not None and record.status in ENDED_STATUSES:
                    break
                if time.monotonic() > deadline:
                    return None
                await asyncio.sleep(0.05)
            detail = await self._detail(record)
        except Exception:
            log.exception("history: reading re-run %s back failed", run.id)
            return None
        listed = await self._page(_state(state), request)
        return listed.merge(detail).merge(Update(message=escape_markdown(f"Re-run finished: run {run.id}.")))

    async def stop(self, rerun_id: str | None, request: gr.Request | None = None) -> tuple[Any, ...]:
        """Stop a re-run by its id; the streaming handler shows how it ended."""
        rerun_id = rerun_id or ""
        run = self.context.service.get(rerun_id) if rerun_id in self._reruns else None
        if run is None or self._reruns.get(rerun_id) != login_of(request):
            return Update(running=False).outputs()
        run.cancel()
        await wait_ended(run)
        await self.context.wait_stream_ended(rerun_id, STOP_GRACE)
        return Update(running=False).outputs()

    # -- export ---------------------------------------------------------------------------------
    async def export(self, kind: str | None, state: dict | None, request: gr.Request | None = None
                     ) -> tuple[Any, ...]:
        """Every run the applied filters select (all pages) as a .jsonl or .csv file."""
        chosen = (kind or "jsonl").lower().strip().strip(".")
        if chosen not in ("jsonl", "csv"):
            return Update(message=error_markdown(f"the export format must be jsonl or csv; got {shown(kind)}")
                          ).outputs()
        suffix = f".{chosen}"
        store = self._store()
        if store is None:
            return Update(message=NOT_KEPT).outputs()
        query = self._query(_state(state)["filters"], request)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = self.context.export_dir() / f"runs-{stamp}-{uuid.uuid4().hex[:8]}{suffix}"
        try:
            count = await export_runs(cast(RunStore, _Redacted(store, self.context.redact)), query, path)
        except StoreError as error:
            log.error("history: export failed: %s", error.message)
            return Update(message=error_markdown(self.context.redact(f"cannot export: {error.message}"))).outputs()
        except Exception:
            log.exception("history: export failed")
            return Update(message=error_markdown(UNEXPECTED)).outputs()
        said = f"Exported {count:,} run{'s' if count != 1 else ''} as {suffix[1:].upper()}."
        return Update(message=said, export=str(path)).outputs()

    async def export_jsonl(self, state: dict | None, request: gr.Request | None = None) -> tuple[Any, ...]:
        return await self.export("jsonl", state, request)

    async def export_csv(self, state: dict | None, request: gr.Request | None = None) -> tuple[Any, ...]:
        return await self.export("csv", state, request)

    # -- internals ------------------------------------------------------------------------------
    def _store(self) -> RunStore | None:
        return self.context.service.store


class _Redacted:
    """The store as export_runs reads it, with secrets masked in every text of every run."""

    def __init__(self, store: RunStore, redact: Any) -> None:
        self.store, self.redact = store, redact

    async def iter_runs(self, query: RunQuery) -> AsyncIterator[RunRecord]:
        async for record in self.store.iter_runs(query):
            yield self._masked(record)

    def _masked(self, record: RunRecord) -> RunRecord:
        redact = self.redact
        update: dict[str, Any] = {
            "prompt": redact(record.prompt), "text": redact(record.text),
            "system": redact(record.system) if record.system else record.system,
            "error_message": redact(record.error_message) if record.error_message else record.error_message,
            "request": self._masked_json(record.request),
        }
        if record.variables is not None:
            update["variables"] = self._masked_json(record.variables)
        return record.model_copy(update=update)

    def _masked_json(self, value: dict[str, Any]) -> dict[str, Any]:
        text = json.dumps(value, ensure_ascii=False)
        masked = self.redact(text)
        if masked == text:
            return value
        try:
            loaded = json.loads(masked)
        except ValueError:
            return {"redacted": masked}
        return loaded if isinstance(loaded, dict) else {"redacted": masked}


def _picked(value: str | None) -> str | None:
    value = (value or "").strip()
    return None if value in ("", ANY) else value


def _state(state: dict | None) -> dict:
    state = dict(state or {})
    state.setdefault("filters", {})
    state["cursors"] = list(state.get("cursors") or [None])
    state.setdefault("next", None)
    return state


def _table(rows: list[list[str]]) -> dict:
    return {"headers": HEADERS, "data": rows}


def _events_table(rows: list[list[str]]) -> dict:
    return {"headers": EVENT_HEADERS, "data": rows}
