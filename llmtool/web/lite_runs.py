"""What the `/lite` pages ask of the service: a run's status (the API's status object), the run's
conversation, how long the model usually takes, starting a run or a next question.

    view = await run_view(context, state, run_id, user)   # None: unknown, or another user's run
    run = await start_run(context, state, request, user, conversation_id=None)

The run's state is the API's (`api.find_status` → `RunStatusBody`, the same object `/api/runs/{id}`
answers), so the page and the API never disagree; a conversation is continued exactly as the API
does it (`api.conversation_history`: stored turns → `conversations.continuation`, 404 / 409 problems).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field

from llmtool.events import Notice, Retrying
from llmtool.providers.base import ChatMessage
from llmtool.service import Run, RunOrigin, RunRequest
from llmtool.service.conversations import current_turns
from llmtool.service.runs import new_run_id
from llmtool.store import RunQuery, RunRecord
from llmtool.web.api import ApiState, conversation_history, ensure_capacity, ensure_idle, find_status, restricted
from llmtool.web.context import AppContext
from llmtool.web.lite_words import typical_time
from llmtool.web.run_status import RunStatusBody

ESTIMATE_SAMPLES = 20  # the model's most recent completed runs the estimate is the median of
ESTIMATE_TTL = 30.0  # seconds an estimate is reused before the store is asked again
STORED_WAIT = 2.0  # seconds a new run's 303, with several replicas, waits for its record to be stored


@dataclass
class RunView:
    """One run as the page shows it."""

    status: RunStatusBody
    prompt: str
    retry: Retrying | None = None
    buffered: bool = False
    effort: str | None = None  # the reasoning effort asked for (None: the model's default)
    notices: list[str] = field(default_factory=list)  # what the run said to know (while it is in memory)
    earlier: list[RunRecord] = field(default_factory=list)  # the conversation's turns before this one

    @property
    def ended(self) -> bool:
        return self.status.status not in ("running", "queued")

    @property
    def last_event(self) -> int:
        """The position of the last event the page shows (the event stream goes on after it)."""
        return self.status.events - 1


class Estimates:
    """Median total time of each model's recent completed runs, cached for a little while."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, float]] = {}

    async def typical(self, context: AppContext, model: str) -> float | None:
        store = context.service.store
        if store is None:
            return None
        now = time.monotonic()
        cached = self._cache.get(model)
        if cached is not None and now - cached[0] < ESTIMATE_TTL:
            return cached[1]
        page = await store.list_runs(RunQuery(model=model, status="completed", limit=ESTIMATE_SAMPLES))
        value = typical_time(r.metrics.total_time for r in page.runs if r.metrics is not None)
        if value is not None:  # too few runs yet: ask again next time
            self._cache[model] = (now, value)
        return value


async def run_view(context: AppContext, state: ApiState, run_id: str, user: str | None) -> RunView | None:
    service = context.service
    status = await find_status(service, state, run_id, user, restricted(context, user))
    if status is None:
        return None
    run = service.get(run_id)
    record = None if run is not None else await service.record(run_id)
    if run is not None:
        prompt, buffered = run.request.messages[-1].content, run.request.validation.mode == "buffer"
        retry = _pending_retry(run)
        effort: str | None = run.request.reasoning_effort
        notices = [e.message for e in list(run.log) if isinstance(e, Notice)]
    else:
        prompt = record.prompt if record is not None else ""
        request = record.request if record is not None else {}
        rules = request.get("validation") or {}
        buffered, retry = rules.get("mode") == "buffer", None
        effort, notices = request.get("reasoning_effort"), []
    view = RunView(status=status, prompt=prompt, retry=retry, buffered=buffered, effort=effort, notices=notices)
    if status.conversation_id and status.position and service.store is not None:
        records = await service.store.conversation(status.conversation_id)
        view.earlier = [t for t in current_turns(records) if (t.position or 0) < status.position]
    return view


def _pending_retry(run: Run) -> Retrying | None:
    """The retry the run is waiting on, if its latest news is one."""
    for event in reversed(run.log):
        if isinstance(event, Retrying):
            return event
        if event.kind != "usage":
            return None
    return None


async def start_run(context: AppContext, state: ApiState, model: str | None, user: str | None, *,
                    prompt: str | None = None, template_request: RunRequest | None = None,
                    conversation_id: str | None = None, reasoning_effort: str | None = None) -> Run:
    """Start a run from the form (a prompt, or a rendered template's request), in a new conversation or
    after `conversation_id`'s stored turns. Raises a `UsageError` (bad request) or a `Problem`
    (not-found: unknown or another user's conversation; conversation-busy: one is pending)."""
    service = context.service
    ensure_capacity(context)
    history: list[ChatMessage] = []
    position = 0
    if conversation_id is not None:
        history, position = await conversation_history(service, state, conversation_id, user, context.auth is not None)
    if template_request is not None:
        request = template_request
    else:
        request = RunRequest.parse({"model": model or None, "prompt": prompt or "", "messages": history,
                                    "reasoning_effort": reasoning_effort or None})
    origin = RunOrigin(user=user, source="lite", conversation_id=conversation_id or uuid.uuid4().hex[:12],
                       position=position)
    await service.check_limits(request, origin)  # the role's refusals (a budget too) on the form, not as a run
    if conversation_id is not None:
        ensure_idle(service, state, conversation_id)  # again: another form may have started one meanwhile
    run = service.start(request, origin, run_id=new_run_id())
    state.track(service, run, origin)
    if context.replicas is not None and service.recorder is not None:
        # Several replicas: the 303's page may be asked of another one (round robin), which knows the run
        # from the store. The recorder writes a new run at once: redirect once it has (as the API's 202).
        with contextlib.suppress(Exception):
            async with asyncio.timeout(STORED_WAIT):
                await service.recorder.flush()
    return run
