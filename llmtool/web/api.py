"""The JSON API under `/api`: runs as jobs (202 + where to look), their event streams, cancel, history.

    curl -si localhost:7860/api/runs -H 'content-type: application/json' -d '{"prompt": "Hello"}'
    # 202 Accepted, Location: /api/runs/3f2a…, the status object
    curl -N localhost:7860/api/runs/3f2a…/events                       # id: / event: / data: frames
    curl -N localhost:7860/api/runs/3f2a…/events -H 'Last-Event-ID: 7' # the rest, from position 8
    curl -X POST localhost:7860/api/runs/3f2a…/cancel

A reasoning model's run takes `reasoning_effort`; its thoughts come as `reasoning` frames before the
answer's `text` frames (and as the status's `reasoning`, apart from `text`); a `notice` frame says what
changed on the way (a schema asked by instruction). `GET /api/models` answers each provider's live list.

Errors are problem+json (`problems.py`). With logins configured every route needs HTTP Basic
(`basic_auth.py`) and a user sees only their own runs. Docs: `/api/docs` (`apidocs.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field, ValidationError

from llmtool.catalog import ModelInfo
from llmtool.errors import LimitExceededError
from llmtool.providers.base import ChatMessage, ReasoningEffort
from llmtool.service import LLMService, Run, RunOrigin, RunRequest
from llmtool.service.conversations import continuation, current_turns, pending
from llmtool.service.runs import new_run_id
from llmtool.settings import describe_validation_error
from llmtool.store import RunQuery, RunRecord, RunStatus
from llmtool.store.claims import release_idempotency_key
from llmtool.web import apidocs, tokens
from llmtool.web.api_body import CreateRun, read_json
from llmtool.web.basic_auth import api_user
from llmtool.web.context import AppContext, context_dependency
from llmtool.web.problems import PROBLEM_TYPES, Problem, type_uri
from llmtool.web.run_status import RunStatusBody, dump, live_status, stored_status
from llmtool.web.sse import event_frames
from llmtool.web.stopping import RunElsewhere, stop_run

CANCEL_WAIT = 2.0  # seconds cancel waits for the terminal event before answering 202
IDEMPOTENT_WAIT = 3.0  # a repeated POST waits this long for the first one's run to show up
STORED_WAIT = 2.0  # seconds a new run's 202, or a conversation whose last turn just ended, waits for the store
MAX_KEY_LENGTH = 255

User = Annotated[str | None, Depends(api_user)]
router = APIRouter(prefix="/api", tags=["runs"], dependencies=[Depends(api_user)])


class ApiState:
    """What the API remembers in this process: who started each live run, conversations in progress."""

    def __init__(self) -> None:
        self.origins: dict[str, RunOrigin] = {}
        self.conversations: dict[str, str] = {}  # conversation id → its run still in memory
        self.keys: dict[tuple[str | None, str], str] = {}  # idempotency keys when there is no store

    def track(self, service: LLMService, run: Run, origin: RunOrigin) -> None:
        for run_id in [r for r in self.origins if service.get(r) is None]:  # left memory: the store answers
            origin_gone = self.origins.pop(run_id)
            if origin_gone.conversation_id and self.conversations.get(origin_gone.conversation_id) == run_id:
                del self.conversations[origin_gone.conversation_id]
        self.origins[run.id] = origin
        if origin.conversation_id:
            self.conversations[origin.conversation_id] = run.id

    def pending_in(self, service: LLMService, conversation_id: str) -> str | None:
        run_id = self.conversations.get(conversation_id)
        run = service.get(run_id) if run_id else None
        return run.id if run is not None and not run.done else None


async def api_state(request: Request) -> ApiState:
    state = getattr(request.app.state, "api", None)
    if state is None:
        state = request.app.state.api = ApiState()
    return state


Context = Annotated[AppContext, Depends(context_dependency)]
State = Annotated[ApiState, Depends(api_state)]


# -- runs ----------------------------------------------------------------------------------------
@router.post("/runs", status_code=202, response_model=RunStatusBody, openapi_extra=apidocs.create_run_body(),
             responses=apidocs.problems(413, 415, 422, 401, 403, 404, 409, 429, 503))
async def create_run(
    request: Request, context: Context, state: State, user: User,
    idempotency_key: Annotated[str | None, Header(max_length=MAX_KEY_LENGTH)] = None,
) -> Response:
    """Start a run; answers 202 with `Location` and the run's status. A repeated `Idempotency-Key`
    answers with the first request's run and starts nothing."""
    service = context.service
    spec = CreateRun.parse(await read_json(request))
    ensure_capacity(context)
    history: list[ChatMessage] = []
    conversation_id, position = spec.conversation_id, 0
    if conversation_id is not None:
        history, position = await conversation_history(service, state, conversation_id, user, context.auth is not None)
    run_request = spec.run_request(context.registry, history)
    origin = RunOrigin(user=user, source="api", conversation_id=conversation_id or uuid.uuid4().hex[:12],
                       position=position)
    run_id = new_run_id()
    key = idempotency_key.strip() if idempotency_key is not None else None
    try:
        await _check_runnable(service, run_request, origin)
    except LimitExceededError:
        if key is None:
            raise
        # A repeat of a request that started its run answers with that run, whatever the limits
        # say now (the first one was counted); a new request is refused and leaves its key free.
        owner = await _claim(service, state, user, key, run_id)
        if owner == run_id:
            await _release(service, state, user, key, run_id)
            raise
        return _accepted(await _wait_for_run(service, state, owner, user, context.auth is not None), replayed=True)
    if key is not None:
        owner = await _claim(service, state, user, key, run_id)
        if owner != run_id:
            status = await _wait_for_run(service, state, owner, user, context.auth is not None)
            return _accepted(status, replayed=True)
    if conversation_id is not None:
        ensure_idle(service, state, conversation_id)
    run = service.start(run_request, origin, run_id=run_id)
    state.track(service, run, origin)
    if context.replicas is not None and service.recorder is not None:
        # Several replicas: the next request (its events, its status) may reach another one, which
        # knows the run from the store. The recorder writes a new run at once: answer once it has.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(STORED_WAIT):
                await service.recorder.flush()
    return _accepted(live_status(run, origin))


@router.get("/runs/{run_id}", response_model=RunStatusBody, responses=apidocs.problems(401, 404))
async def get_run(run_id: str, context: Context, state: State, user: User) -> JSONResponse:
    """The run's status: live from this process, else as stored."""
    return JSONResponse(dump(await _status(context, state, run_id, user)))


@router.get("/runs/{run_id}/events", response_class=StreamingResponse, responses={
    200: {"content": {"text/event-stream": {}}, "description": "One frame per event: id (its position), event "
          "(its kind: started, retrying, notice, reasoning, text, usage, validated, then completed, stopped, "
          "failed or interrupted), data (the event as JSON)."},
    204: {"description": "Asked at or past the terminal event: nothing more will come."},
    **apidocs.problems(401, 404, 422),
})
async def run_events(
    run_id: str, context: Context, state: State, user: User,
    after: Annotated[int | None, Query(ge=-1, description="Send positions after this one.")] = None,
    last_event_id: Annotated[str | None, Header(description="Wins over `after`.")] = None,
) -> Response:
    """The run's events as Server-Sent Events from position `after + 1` (or `Last-Event-ID + 1`), else from 0."""
    status = await _status(context, state, run_id, user)
    start = 0 if after is None else after + 1
    if last_event_id is not None and last_event_id.strip():
        try:
            start = int(last_event_id.strip()) + 1
        except ValueError:
            raise Problem("invalid-request", f"Last-Event-ID must be an event position (a whole number), "
                                             f"not {last_event_id[:40]!r}") from None
        if start < 0:
            raise Problem("invalid-request", "Last-Event-ID must not be negative")
    ended = status.status not in ("running", "queued")
    if ended and start >= status.events:
        return Response(status_code=204)
    return StreamingResponse(event_frames(context.service, run_id, start), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.post("/runs/{run_id}/cancel", response_model=RunStatusBody, responses={
    202: {"description": "Stop requested; the run has not ended yet (`cancel_requested: true`)."},
    **apidocs.problems(401, 404, 409),
})
async def cancel_run(run_id: str, context: Context, state: State, user: User) -> Response:
    """Stop the run (its provider connection closes at once, on whichever replica runs it); waits up to
    2 s for its end."""
    status = await _status(context, state, run_id, user)
    try:
        outcome = await stop_run(context, run_id, status, CANCEL_WAIT)
    except RunElsewhere as elsewhere:
        raise Problem("run-elsewhere", elsewhere.message) from None
    if outcome == "had ended":
        return JSONResponse(dump(status, cancel_requested=False,
                                 detail=f"the run had already ended ({status.status}): nothing to stop"))
    after = await _status(context, state, run_id, user)
    if outcome == "ending" or after.status == "running":
        return JSONResponse(dump(after, cancel_requested=True, detail="stop requested; the run is ending"),
                            status_code=202)
    return JSONResponse(dump(after, cancel_requested=True, detail=f"the run ended: {after.status}"))


class RunList(BaseModel):
    runs: list[RunStatusBody]
    next_cursor: int | None = Field(None, description="Pass as `cursor` for the next (older) page.")


@router.get("/runs", response_model=RunList, responses=apidocs.problems(401, 422))
async def list_runs(
    context: Context, user: User,
    status: RunStatus | None = None,
    model: str | None = None,
    template: str | None = None,
    conversation_id: str | None = None,
    since: Annotated[float | None, Query(description="Created at or after (Unix time).")] = None,
    until: Annotated[float | None, Query(description="Created before (Unix time).")] = None,
    q: Annotated[str | None, Query(description="Words to find in the prompt or the answer.")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[int | None, Query(description="`next_cursor` of the previous page.")] = None,
) -> JSONResponse:
    """The history, newest first, one page at a time."""
    store = context.service.store
    if store is None:
        return JSONResponse({"runs": [], "next_cursor": None})
    try:
        query = RunQuery(user=user if restricted(context, user) else None, status=status, model=model,
                         template=template, conversation_id=conversation_id,
                         since=since, until=until, text=q, limit=limit, before=cursor)
    except ValidationError as exc:
        raise Problem("invalid-request", describe_validation_error(exc)) from None
    page = await store.list_runs(query)
    return JSONResponse({"runs": [dump(stored_status(record)) for record in page.runs],
                         "next_cursor": page.next_cursor})


# -- what a client may pick ----------------------------------------------------------------------
class ModelEntry(BaseModel):
    id: str = Field(description="PROVIDER:MODEL, as `model` takes it.")
    provider: str
    name: str
    kind: str = Field(description="The provider's protocol: openai, anthropic, openai_compatible or demo.")
    display_name: str | None = None
    input_price: float | None = Field(None, description="Dollars per million input tokens; null: unknown.")
    output_price: float | None = Field(None, description="Dollars per million output tokens; null: unknown.")
    priced: bool = Field(description="False: the model has no price, its runs' cost is unknown.")
    efforts: list[ReasoningEffort] | None = Field(
        None, description="The reasoning efforts it takes; [] not a reasoning model; null: not known (any is sent).")


class ProviderEntry(BaseModel):
    provider: str
    live: bool = Field(description="True: the provider's own list (asked recently); false: the configured list.")
    problem: str | None = Field(None, description="Why the provider's list could not be had.")
    models: list[str] = Field(description="Its model ids, as in `models`.")


class ModelList(BaseModel):
    default: str
    models: list[ModelEntry] = Field(description="Every provider's models; any other PROVIDER:MODEL of a "
                                                 "configured provider may be asked for too.")
    providers: list[ProviderEntry]


@router.get("/models", tags=["catalog"], response_model=ModelList, responses=apidocs.problems(401))
async def list_models(context: Context, user: User) -> JSONResponse:
    """The models each configured provider offers now (its live list, cached; the configured list when
    it cannot be asked, with the reason), those your role may use, and the default."""
    service = context.service
    listed = await service.model_lists.all()
    models: list[ModelEntry] = []
    providers: list[ProviderEntry] = []
    for entry in listed:
        offered = offered_models(context, user, entry.models)
        providers.append(ProviderEntry(provider=entry.provider, live=entry.live,
                                       problem=context.redact(entry.problem) if entry.problem else None,
                                       models=[m.id for m in offered]))
        models += [ModelEntry(id=m.id, provider=m.provider, name=m.name, kind=m.kind, display_name=m.display_name,
                              input_price=m.input_price, output_price=m.output_price, priced=m.priced,
                              efforts=list(m.efforts) if m.efforts is not None else None)
                   for m in offered]
    body = ModelList(default=service.default_model(), models=models, providers=providers)
    return JSONResponse(body.model_dump(mode="json"))


@router.get("/templates", tags=["catalog"], responses=apidocs.problems(401))
async def list_templates(context: Context, user: User) -> dict[str, Any]:
    """Templates that load and your role may use, with their variables (type, description, default,
    choices, required)."""
    return {"templates": [{
        "name": t.name, "description": t.description, "model": t.model,
        "variables": {name: {"type": spec.type, "description": spec.description, "default": spec.default,
                             "choices": spec.choices, "required": spec.is_required}
                      for name, spec in t.variables.items()},
    } for t in context.service.allowed_templates(user, context.registry.list())]}


@router.get("/problems/{slug}", tags=["meta"], include_in_schema=False)
async def problem_type(slug: str) -> dict[str, Any]:
    kind = PROBLEM_TYPES.get(slug)
    if kind is None:
        raise Problem("not-found", f"no problem type {slug!r}")
    return {"type": type_uri(slug), "title": kind.title, "status": kind.status}


# -- helpers -------------------------------------------------------------------------------------
async def _check_runnable(service: LLMService, request: RunRequest, origin: RunOrigin) -> None:
    """What `service.start` would refuse, checked before an Idempotency-Key is tied to the run: the
    request, and what the login's role allows and has left (403 forbidden, 429 with Retry-After)."""
    await service.check_limits(request, origin)


async def _claim(service: LLMService, state: ApiState, user: str | None, key: str, run_id: str) -> str:
    if not key or not key.isprintable():
        raise Problem("invalid-request", "Idempotency-Key must be 1 to 255 printable characters")
    if service.store is None:
        return state.keys.setdefault((user, key), run_id)
    return await service.store.claim_idempotency_key(user, key, run_id)


async def _release(service: LLMService, state: ApiState, user: str | None, key: str, run_id: str) -> None:
    """Give back a key this request claimed for a run it then did not start."""
    if service.store is None:
        if state.keys.get((user, key)) == run_id:
            del state.keys[(user, key)]
        return
    await release_idempotency_key(service.store, user, key, run_id)


async def _wait_for_run(service: LLMService, state: ApiState, run_id: str, user: str | None,
                        logins: bool) -> RunStatusBody:
    """The run a repeated request's key belongs to (the first request may still be starting it)."""
    deadline = time.monotonic() + IDEMPOTENT_WAIT
    while True:
        status = await find_status(service, state, run_id, user, logins)
        if status is not None:
            return status
        if time.monotonic() > deadline:
            raise Problem("idempotency-conflict", "a request with this Idempotency-Key did not start a run "
                                                  "(it is still being processed, or it failed): retry with a new key")
        await asyncio.sleep(0.05)


async def conversation_history(service: LLMService, state: ApiState, conversation_id: str, user: str | None,
                        logins: bool) -> tuple[list[ChatMessage], int]:
    """(the messages continuing the conversation, the next turn's position); 404 unknown, 409 pending."""
    if state.pending_in(service, conversation_id):
        raise _conversation_busy(conversation_id)
    latest = state.conversations.get(conversation_id)
    deadline = time.monotonic() + STORED_WAIT
    while latest and service.get(latest) is not None:  # its last turn just ended: stored in a moment
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)
    records = await service.store.conversation(conversation_id) if service.store is not None else []
    if not records or (logins and any(r.user != user for r in records)):
        raise Problem("not-found", f"no conversation {conversation_id}: continue one of your runs' "
                                   "conversation_id, or leave it out to start a new conversation")
    turns = current_turns(records)
    if pending(turns) is not None:
        raise _conversation_busy(conversation_id)
    return continuation(turns), max((t.position or 0) for t in turns) + 1


def ensure_capacity(context: AppContext) -> None:
    """A `busy` Problem (503) when the server already runs as many runs as it takes."""
    limit = context.settings.ui.queue_size
    if len(context.service.running()) >= limit:
        raise Problem("busy", f"the server is running {limit} runs, its limit: try again in a few seconds",
                      headers={"Retry-After": "5"})


def ensure_idle(service: LLMService, state: ApiState, conversation_id: str) -> None:
    """A `conversation-busy` Problem (409) while a run is pending in the conversation: check it right
    before starting, after any await, or two requests can both pass it."""
    if state.pending_in(service, conversation_id):
        raise _conversation_busy(conversation_id)


def _conversation_busy(conversation_id: str) -> Problem:
    return Problem("conversation-busy", f"a run is still pending in conversation {conversation_id}: wait for it "
                                        "to end (or cancel it), then send the next question")


async def find_status(service: LLMService, state: ApiState, run_id: str, user: str | None,
                logins: bool) -> RunStatusBody | None:
    run = service.get(run_id)
    origin = state.origins.get(run_id)
    if run is not None and origin is not None:
        return live_status(run, origin) if not logins or origin.user == user else None
    record: RunRecord | None = await service.record(run_id)
    if record is None and run is not None:  # started by another surface, not written yet
        return live_status(run, None) if not logins else None
    if record is None or (logins and record.user != user):
        return None
    if run is not None:  # live: fresher than the store
        return live_status(run, RunOrigin(user=record.user, source=record.source,
                                          conversation_id=record.conversation_id, position=record.position))
    return stored_status(record)


def offered_models(context: AppContext, user: str | None, models: Iterable[ModelInfo]) -> list[ModelInfo]:
    """`models` as `user`'s role may use them (all of them without logins)."""
    service = context.service
    principal = service.principal(user)
    return [m for m in models if principal is None or service.limits.allows_model(principal, m)]


def restricted(context: AppContext, user: str | None) -> bool:
    """Whether `user` sees only their own runs: with logins, unless their role sees all (admins)."""
    if context.auth is None:
        return False
    principal = context.principal(user)
    return principal is None or not principal.sees_all_runs


async def _status(context: AppContext, state: ApiState, run_id: str, user: str | None) -> RunStatusBody:
    status = await find_status(context.service, state, run_id, user, restricted(context, user))
    if status is None:
        raise Problem("not-found", f"no run {run_id}")
    return status


def _accepted(status: RunStatusBody, replayed: bool = False) -> JSONResponse:
    headers = {"Location": status.links.self}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(dump(status), status_code=202, headers=headers)


router.include_router(tokens.router)  # /api/tokens: a user's API tokens for scripts
router.include_router(apidocs.docs_router(router))  # /api/openapi.json, /api/docs, and the catch-all 404 last
