"""Pages that work without JavaScript, under `/lite` (the seeds' pattern: post, redirect, check again).

    GET  /lite                      the form: model (any PROVIDER:MODEL; the providers' lists offered),
                                    reasoning effort, prompt, or a template's typed variable fields
    GET  /lite?template=NAME        the same form with that template's fields
    POST /lite/runs                 start a run (or the next question of a conversation) → 303 to its page
    GET  /lite/runs/{id}            the conversation so far, the run's state in words, the text so far,
                                    Check again, Stop, and once it ended a box for the next question
    GET  /lite/runs/{id}/part       the parts of that page that change, as JSON (for lite.js)
    POST /lite/runs/{id}/stop       stop the run → 303 back to its page
    GET  /lite/static/{name}        lite.css, lite.js

No timed refresh (WCAG 2.2.1): the page is read again with Check again. With JavaScript on,
`static/lite.js` follows the run's event stream (`/api/runs/{id}/events`) and updates the page.
Every page sends its own Content-Security-Policy (scripts from our origin only, nothing inline).
Forms carry a CSRF token (`csrf.py`); with logins configured a browser without a session is sent
to `/login` (`login.py`) and comes back here, and each user sees only their own runs. Model output
and error messages pass through `context.redact`; answers, and a reasoning model's thoughts (collapsed
above the answer: "Thought for 14 s"), are rendered as sanitized Markdown (`markdown.py`).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData

from llmtool.errors import UsageError
from llmtool.events import Metrics
from llmtool.providers.base import REASONING_EFFORTS, ReasoningEffort
from llmtool.store import StoreError
from llmtool.templates import Template, TemplateError
from llmtool.web import csrf
from llmtool.web.api import ApiState, api_state, offered_models
from llmtool.web.context import AppContext, app_context, context_dependency
from llmtool.web.lite_forms import template_fields, template_values
from llmtool.web.lite_runs import Estimates, RunView, run_view, start_run
from llmtool.web.lite_words import estimate_line, seconds, state_line, thinking_line, validation_line
from llmtool.web.login import login_url, session_user
from llmtool.web.markdown import render_markdown
from llmtool.web.problems import Problem
from llmtool.web.stopping import RunElsewhere, stop_run

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
STATIC = {"lite.css": "text/css", "lite.js": "text/javascript"}
STOP_WAIT = 2.0  # seconds Stop waits for the run's end before redirecting back
MAX_PROMPT = 200_000  # characters; a form field past it is refused with a sentence, not a 413 page
LIST_WAIT = 2.0  # seconds a page waits for the providers' model lists before offering the configured ones
POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "font-src 'self'",
    "connect-src 'self'",
    "frame-src 'none'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'self'",
])

EFFORT_LABELS: dict[str, str] = {
    "none": "None: answer without thinking", "minimal": "Minimal", "low": "Low", "medium": "Medium",
    "high": "High", "xhigh": "Extra high", "max": "Max",
}

pages = Environment(loader=FileSystemLoader(HERE / "templates" / "lite"),
                    autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
pages.globals["efforts"] = [(effort, EFFORT_LABELS[effort]) for effort in REASONING_EFFORTS]


_fetching: set[asyncio.Future[Any]] = set()  # model lists still being fetched after a page gave up waiting


def _fetched(fetch: asyncio.Future[Any]) -> None:
    _fetching.discard(fetch)
    if not fetch.cancelled() and fetch.exception() is not None:
        log.warning("listing the models failed: %s", fetch.exception())


class Refused(Exception):
    """A page that says no: its status code, a heading and a sentence (and headers)."""

    def __init__(self, status: int, title: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.title, self.message, self.headers = status, title, message, headers or {}


async def lite_user(request: Request) -> str | None:
    """The login name of the session, None without logins; else a 303 to the login form."""
    context = app_context(request)
    if context.auth is None:
        return None
    user = await session_user(request, context)
    if user is None:
        target = login_url(request.url.path, request.url.query)
        raise Refused(303, "Log in", "Log in with your llmtool user name and password to use these pages.",
                      headers={"Location": target, "Cache-Control": "no-store"})
    return user


async def lite_state(request: Request) -> Estimates:
    estimates = getattr(request.app.state, "lite_estimates", None)
    if estimates is None:
        estimates = request.app.state.lite_estimates = Estimates()
    return estimates


router = APIRouter(prefix="/lite", include_in_schema=False, dependencies=[Depends(lite_user)])
Context = Annotated[AppContext, Depends(context_dependency)]
State = Annotated[ApiState, Depends(api_state)]
User = Annotated[str | None, Depends(lite_user)]
Known = Annotated[Estimates, Depends(lite_state)]


def page(request: Request, name: str, status_code: int = 200, headers: dict[str, str] | None = None,
         **values: Any) -> HTMLResponse:
    token = csrf.token(request)
    login = request.scope.get("state", {}).get("llmtool_user")  # set once the session was read
    body = pages.get_template(name).render(csrf_field=csrf.FIELD, csrf_token=token, login_user=login, **values)
    response = HTMLResponse(body, status_code=status_code, headers={
        "Content-Security-Policy": POLICY, "Cache-Control": "no-store", **(headers or {})})
    return csrf.remember(response, request, token)


def refusal(request: Request, refused: Refused) -> HTMLResponse:
    return page(request, "message.html", refused.status, refused.headers, title=refused.title,
                message=refused.message)


def install(app: Any) -> None:
    """The handler turning a `Refused` into its page (the app's other handlers answer /api in JSON)."""

    async def on_refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        return refusal(request, exc)

    app.add_exception_handler(Refused, on_refused)


# -- the form ------------------------------------------------------------------------------------
@router.get("/")
async def with_slash() -> RedirectResponse:
    return RedirectResponse("/lite", status_code=308)  # else Gradio, mounted at `/`, would answer it


@router.get("", response_class=HTMLResponse)
async def form_page(request: Request, context: Context, template: str | None = None) -> HTMLResponse:
    chosen: Template | None = None
    errors: dict[str, str] = {}
    if template:
        try:
            chosen = context.registry.get(template)
        except TemplateError as exc:
            errors["template"] = context.redact(exc.message)
    return await _form(request, context, chosen, errors=errors, status_code=422 if errors else 200,
                       picked=template or "")


async def model_choices(context: AppContext, user: str | None = None) -> dict[str, Any]:
    """What the model field offers: every provider's models (its live list, else the configured one),
    and a sentence for each provider whose list could not be had. A provider slow to list its models
    does not hold the page up: past `LIST_WAIT` the configured models are offered, and the list goes on
    being fetched (cached for the next page)."""
    fetch = asyncio.ensure_future(context.service.model_lists.all())
    try:
        async with asyncio.timeout(LIST_WAIT):
            listed = await asyncio.shield(fetch)
    except TimeoutError:
        _fetching.add(fetch)
        fetch.add_done_callback(_fetched)
        return {"models": [model.id for model in offered_models(context, user, context.service.models())],
                "model_notes": []}
    return {
        "models": [model.id for entry in listed for model in offered_models(context, user, entry.models)],
        "model_notes": [f"The list of {entry.provider}'s models could not be read ({context.redact(entry.problem)}): "
                        "its usual models are offered." for entry in listed if entry.problem],
    }


async def _form(request: Request, context: AppContext, template: Template | None, *,
                errors: dict[str, str] | None = None, typed: FormData | None = None, status_code: int = 200,
                picked: str = "") -> HTMLResponse:
    errors = errors or {}
    service = context.service
    login: str | None = request.scope.get("state", {}).get("llmtool_user")  # set once the session was read
    model = (typed.get("model") if typed is not None else None) or (template.model if template else None) \
        or service.default_model()
    fields = template_fields(template, typed, errors) if template is not None else []
    summary = [(f"var_{f.name}", f.error) for f in fields if f.error]
    summary += [(key, message) for key, message in errors.items()
                if key in ("model", "reasoning_effort", "prompt", "template", "form")]
    effort = _text(typed, "reasoning_effort") if typed is not None else ""
    default_effort = template.meta.reasoning_effort if template is not None else None
    return page(
        request, "form.html", status_code,
        title="Ask a model", model=str(model), effort=effort, default_effort=default_effort,
        templates=[t.name for t in context.service.allowed_templates(login, context.registry.list())],
        template=template, picked=picked or
        (template.name if template else ""), fields=fields, errors=errors, summary=summary,
        prompt=str(typed.get("prompt") or "") if typed is not None else "", **await model_choices(context, login),
    )


@router.get("/runs")
async def runs_get() -> RedirectResponse:
    """The address a refused form leaves in the address bar: going there again shows the form."""
    return RedirectResponse("/lite", status_code=303)


@router.post("/runs")
async def create(request: Request, context: Context, state: State, user: User) -> Response:
    form = await _posted(request)
    conversation_id = _text(form, "conversation_id") or None
    if conversation_id is not None:
        return await _follow_up(request, context, state, user, form, conversation_id)
    template: Template | None = None
    name = _text(form, "template")
    if name:
        try:
            template = context.registry.get(name)
        except TemplateError as exc:
            return await _form(request, context, None, errors={"template": context.redact(exc.message)},
                               typed=form, status_code=422)
    model = _text(form, "model").strip() or None
    effort, errors = _effort(form)
    if not errors and template is not None:
        meta = template.meta
        errors = _check_choices(context, model or meta.model, effort or meta.reasoning_effort, meta.max_output_tokens)
    elif not errors:
        errors = _check_choices(context, model, effort)
    try:
        if template is not None:
            values, problems = template_values(template, form)
            errors.update(problems)
            if errors:
                return await _form(request, context, template, errors=errors, typed=form, status_code=422)
            run = await start_run(context, state, model, user, template_request=template.to_run_request(
                values, model=model, reasoning_effort=effort))
        else:
            prompt = _text(form, "prompt")
            if not prompt.strip():
                errors["prompt"] = "Enter your question: the prompt is empty."
            elif len(prompt) > MAX_PROMPT:
                errors["prompt"] = f"The prompt is {len(prompt):,} characters; the limit is {MAX_PROMPT:,}."
            if errors:
                return await _form(request, context, None, errors=errors, typed=form, status_code=422)
            run = await start_run(context, state, model, user, prompt=prompt, reasoning_effort=effort)
    except UsageError as exc:
        key = "form" if template is not None else "prompt"
        return await _form(request, context, template, errors={key: context.redact(exc.message)}, typed=form,
                           status_code=422)
    return RedirectResponse(f"/lite/runs/{run.id}", status_code=303)


async def _follow_up(request: Request, context: AppContext, state: ApiState, user: str | None, form: FormData,
                     conversation_id: str) -> Response:
    """The next question of a conversation; a mistake shows the run page it was written on again."""
    after = _text(form, "after")
    prompt = _text(form, "prompt")
    model = _text(form, "model").strip() or None
    effort, errors = _effort(form)
    if not errors:
        errors = _check_choices(context, model, effort)
    if not prompt.strip():
        errors["prompt"] = "Enter your next question: it is empty."
    elif len(prompt) > MAX_PROMPT:
        errors["prompt"] = f"The question is {len(prompt):,} characters; the limit is {MAX_PROMPT:,}."
    try:
        if not errors:
            run = await start_run(context, state, model, user, prompt=prompt, conversation_id=conversation_id,
                                  reasoning_effort=effort)
            return RedirectResponse(f"/lite/runs/{run.id}", status_code=303)
    except Problem as problem:
        if problem.slug == "conversation-busy":
            raise Refused(409, "One question at a time", "An answer is still being written in this conversation: "
                          "wait for it to end (or stop it), then send your next question.") from None
        raise Refused(404, "Conversation not found", "There is no such conversation among your runs.") from None
    except UsageError as exc:
        errors["prompt"] = context.redact(exc.message)
    view = await run_view(context, state, after, user) if after else None
    if view is None:
        raise Refused(422, "The question was not sent", next(iter(errors.values())))
    return await _run_page(request, context, await lite_state(request), view, errors=errors, typed_prompt=prompt,
                           typed_model=model, typed_effort=_text(form, "reasoning_effort"), status_code=422)


def _effort(form: FormData) -> tuple[ReasoningEffort | None, dict[str, str]]:
    """The reasoning effort picked (None: the default), or the error for a value not in the list."""
    value = _text(form, "reasoning_effort").strip()
    if not value:
        return None, {}
    for effort in REASONING_EFFORTS:
        if effort == value:
            return effort, {}
    return None, {"reasoning_effort": "Pick a reasoning effort from the list (or the model's default)."}


def _check_choices(context: AppContext, model: str | None, effort: ReasoningEffort | None,
                   max_output_tokens: int | None = None) -> dict[str, str]:
    """The model field's error (any PROVIDER:MODEL of a configured provider goes), else the reasoning
    effort's (one the model does not take), each the service's own sentence."""
    service = context.service
    try:
        info = service.catalog.resolve(model or service.default_model())
    except UsageError as exc:
        return {"model": _sentence(context.redact(exc.message))}
    try:
        service.check_effort(info, effort, max_output_tokens)
    except UsageError as exc:
        return {"reasoning_effort": _sentence(context.redact(exc.message))}
    return {}


def _sentence(message: str) -> str:
    """'demo:x does not…' → 'demo:x does not….' (capitalized when it starts with a word)."""
    message = message.strip()
    if message[:1].islower() and ":" not in message.split(" ", 1)[0]:
        message = message[0].upper() + message[1:]
    return message if message.endswith((".", "!", "?")) else message + "."


async def _posted(request: Request) -> FormData:
    """The form, once CSRF checks passed (else a 403 page)."""
    try:
        form = await request.form(max_files=0, max_fields=200, max_part_size=1024 * 1024)
    except Exception as exc:  # a malformed body: say so, never a traceback
        log.info("an unreadable form was posted to %s: %s", request.url.path, exc)
        raise Refused(400, "The form could not be read", "The form could not be read: go back and send it "
                      "again.") from None
    refused = csrf.check(request, form)
    if refused is not None:
        raise Refused(403, "The form was refused", refused[0].upper() + refused[1:] + ".")
    return form


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


# -- a run ---------------------------------------------------------------------------------------
async def _view(context: AppContext, state: ApiState, run_id: str, user: str | None) -> RunView:
    try:
        view = await run_view(context, state, run_id, user)
    except StoreError as exc:
        log.error("the run store failed answering /lite/runs/%s: %s", run_id, exc.message)
        raise Refused(503, "Try again in a moment", "The run store cannot be read right now: check again in "
                      "a few seconds.") from None
    if view is None:
        raise Refused(404, "Run not found", f"There is no run {run_id!r} among your runs. "
                      "Start a new question instead.")
    return view


@router.get("/runs/{run_id}", response_class=HTMLResponse)
async def run_page(request: Request, run_id: str, context: Context, state: State, user: User,
                   known: Known) -> HTMLResponse:
    return await _run_page(request, context, known, await _view(context, state, run_id, user))


def _withheld(view: RunView) -> bool:
    """Buffer mode releases the answer only once it passed its rules: as the browser tool does,
    a buffered run that did not complete and pass shows no text."""
    status = view.status
    passed = status.status == "completed" and (status.validation is None or status.validation.passed)
    return view.buffered and not passed


async def _parts(context: AppContext, known: Estimates, view: RunView) -> dict[str, Any]:
    redact = context.redact
    status = view.status
    typical = None if view.ended else await known.typical(context, status.model)
    return {
        "view": view,
        "state": state_line(status, redact=redact, retry=view.retry, buffered=view.buffered),
        "estimate": estimate_line(typical, status.elapsed_s),
        "validation": validation_line(status, redact),
        "notices": [redact(notice) for notice in view.notices],
        # The reasoning is not the answer: shown (collapsed) even while a buffered answer is withheld.
        "thought": thinking_line(status),
        "thinking": not view.ended and not status.text and not view.buffered,
        "reasoning_html": render_markdown(redact(status.reasoning)),
        "answer_html": "" if _withheld(view) else render_markdown(redact(status.text)),
        "earlier": [{"prompt": redact(t.prompt), "answer_html": render_markdown(redact(t.text)),
                     "thought": _earlier_thought(t.reasoning, t.metrics),
                     "reasoning_html": render_markdown(redact(t.reasoning)),
                     "note": _turn_note(t.status, redact(t.error_message or ""))} for t in view.earlier],
    }


def _earlier_thought(reasoning: str, metrics: Metrics | None) -> str | None:
    if metrics is not None and metrics.thinking_time is not None:
        return f"Thought for {seconds(metrics.thinking_time)}"
    return "The model's thoughts" if reasoning else None


def _turn_note(status: str, message: str) -> str | None:
    return {"stopped": "Stopped: the answer is partial.",
            "failed": f"Failed: {message}" if message else "Failed.",
            "interrupted": "Interrupted: the server stopped while this answer was written.",
            "running": "Still being written."}.get(status)


async def _run_page(request: Request, context: AppContext, known: Estimates, view: RunView, *,
                    errors: dict[str, str] | None = None, typed_prompt: str = "", typed_model: str | None = None,
                    typed_effort: str | None = None, status_code: int = 200) -> HTMLResponse:
    parts = await _parts(context, known, view)
    errors = errors or {}
    title = parts["state"].split(" — ")[0]
    if title.startswith("Thinking…"):
        title = "Thinking…"  # the title stays put while the seconds go on
    return page(request, "run.html", status_code, title=title, errors=errors,
                summary=[(key, message) for key, message in errors.items()],
                model=typed_model or view.status.model, effort=view.effort if typed_effort is None else typed_effort,
                prompt=context.redact(view.prompt), typed_prompt=typed_prompt, **parts,
                **await model_choices(context, request.scope.get("state", {}).get("llmtool_user")))


@router.get("/runs/{run_id}/part")
async def run_part(request: Request, run_id: str, context: Context, state: State, user: User,
                   known: Known) -> JSONResponse:
    """What lite.js swaps in: the state sentence, the answer as sanitized HTML, the controls."""
    view = await _view(context, state, run_id, user)
    parts = await _parts(context, known, view)
    token = csrf.token(request)
    controls = pages.get_template("_controls.html").render(
        view=view, csrf_field=csrf.FIELD, csrf_token=token, model=view.status.model, effort=view.effort or "",
        errors={}, typed_prompt="", **await model_choices(context, user))
    answer = pages.get_template("_answer.html").render(**parts)
    response = JSONResponse({"ended": view.ended, "status": view.status.status, "state": parts["state"],
                             "estimate": parts["estimate"], "answer_html": answer, "controls_html": controls,
                             "thought": parts["thought"], "after": view.last_event},
                            headers={"Cache-Control": "no-store"})
    return csrf.remember(response, request, token)


@router.post("/runs/{run_id}/stop")
async def stop(request: Request, run_id: str, context: Context, state: State, user: User) -> Response:
    await _posted(request)
    view = await _view(context, state, run_id, user)
    try:
        await stop_run(context, run_id, view.status, STOP_WAIT)  # on whichever replica runs it
    except RunElsewhere as elsewhere:
        why = ("Redis, which passes a Stop on to it, does not answer: try again in a moment." if elsewhere.redis_down
               else "this one cannot stop it. Check again in a moment.")
        raise Refused(409, "Stop it where it runs", "This answer is being written by another llmtool server "
                      f"process; {why}") from None
    return RedirectResponse(f"/lite/runs/{run_id}", status_code=303)


# -- our own files -------------------------------------------------------------------------------
static = APIRouter(prefix="/lite/static", include_in_schema=False)


@static.get("/{name}")
async def static_file(name: str) -> Response:
    if name not in STATIC:
        return Response("Not found", status_code=404, media_type="text/plain")
    return FileResponse(HERE / "static" / name, media_type=STATIC[name], headers={"Cache-Control": "no-cache"})
