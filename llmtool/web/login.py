"""The login, for the Gradio tool, `/api` and `/lite` alike: a plain form, server-side sessions.

    GET  /login?next=/lite      the form (works without JavaScript; the /lite look and CSP)
    POST /login                 right: a new session (cookie `llmtool_session`) and 303 to `next`;
                                wrong: the form again, 401, "the user name or password is wrong";
                                too many failures: 429 with Retry-After and how long to wait
    GET  /logout                a one-button confirmation (the Gradio page links here: its Markdown
                                cannot hold a form, and a Gradio event handler cannot set a cookie)
    POST /logout                ends the session, 303 to /login

Passwords are checked by `context.accounts` (`llmtool/accounts`): throttled per user name and client
address before any hashing, the hash checked in a worker thread. A session remembers the password it
was opened under, so a new password or a removed user ends it. Behind a trusted reverse proxy
(`accounts.trusted_proxies`) the login named in `accounts.proxy_user_header` counts as logged in.

Sessions live in the run store (`sessions.py`). With logins configured (`context.auth`), the Gradio
tool is wrapped in `LoginGate`: without a session its pages answer 303 to `/login?next=<path>` and
everything else (its API, `/config`, files, the queue) 401, so the page's embedded API description
never reaches an anonymous browser; with a session Gradio's `auth_dependency` (`gradio_user`) hands
the login name to `gr.Request.username`. `/lite` redirects the same way (`lite.lite_user`); `/api`
answers 401 and takes HTTP Basic or the session (`basic_auth.api_user`). Without users nothing here
asks for anything. Both forms carry CSRF protection (`csrf.py`); `next` is only ever a path of ours.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from llmtool.accounts import Accounts
from llmtool.store import StoreError
from llmtool.web import csrf
from llmtool.web.context import AppContext, app_context
from llmtool.web.sessions import COOKIE

log = logging.getLogger(__name__)
WRONG = "The user name or password is wrong. Check both and try again."
UNAVAILABLE = "Logging in is not possible right now: the server cannot keep the session. Try again in a moment."
_STATE = "llmtool_user"
_MAX_FIELD = 1024

router = APIRouter(include_in_schema=False)


# -- who is this ----------------------------------------------------------------------------------
async def session_user(request: HTTPConnection, context: AppContext) -> str | None:
    """The login of the request's session cookie (or of a trusted proxy's header), or None
    (remembered for the rest of the request)."""
    state = request.scope.setdefault("state", {})
    if _STATE not in state:
        state[_STATE] = await _logged_in(request, context.accounts, context)
    user: str | None = state[_STATE]
    return user


async def _logged_in(request: HTTPConnection, accounts: Accounts | None, context: AppContext) -> str | None:
    if accounts is None:
        return None
    proxied = accounts.proxy_user(request.client.host if request.client else None, request.headers)
    if proxied is not None:
        return proxied
    return await context.sessions.user_of(request.cookies.get(COOKIE), accounts.stamp)


def client_address(request: HTTPConnection, accounts: Accounts) -> str | None:
    """The client's address as the throttle counts it (behind trusted proxies, from X-Forwarded-For)."""
    return accounts.client(request.client.host if request.client else None, request.headers.get("x-forwarded-for"))


def gradio_user(context: AppContext) -> Callable[[Request], Awaitable[str | None]]:
    """Gradio's `auth_dependency`: the session's login name becomes `gr.Request.username`."""

    async def dependency(request: Request) -> str | None:
        return await session_user(request, context)

    return dependency


def safe_next(value: str | None) -> str:
    """`value` when it is a path on this site (`/…`), else `/`: never `//host`, a scheme, a
    backslash (browsers read `/\\host` as `//host`), spaces or control characters."""
    if not value or len(value) > 2000 or not value.startswith("/") or value.startswith("//"):
        return "/"
    if "\\" in value or not value.isascii() or any(c.isspace() or not c.isprintable() for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path in ("/login", "/logout"):
        return "/"
    return value


def login_url(path: str, query: str = "") -> str:
    """`/login?next=<the path asked for>`."""
    target = safe_next(path + (f"?{query}" if query else ""))
    return "/login?" + urlencode({"next": target})


# -- the pages ------------------------------------------------------------------------------------
def _page(request: Request, name: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    from llmtool.web.lite import page  # the /lite pages' template, CSP and CSRF cookie

    return page(request, name, status_code, **values)


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str | None = None) -> Response:
    context = app_context(request)
    target = safe_next(next)
    if context.auth is None or await session_user(request, context) is not None:
        return RedirectResponse(target, status_code=303)  # nothing to log in to, or already in
    return _page(request, "login.html", title="Log in", next=target, username="", summary=[])


@router.post("/login")
async def login(request: Request) -> Response:
    context = app_context(request)
    form = await _form(request)
    if isinstance(form, Response):
        return form
    target = safe_next(_text(form, "next"))
    accounts = context.accounts
    if accounts is None:
        return RedirectResponse(target, status_code=303)
    username, password = _text(form, "username").strip(), _text(form, "password")
    outcome = None
    if username and password and len(username) <= 200:
        outcome = await accounts.authenticate(username, password, client_address(request, accounts))
    if outcome is not None and outcome.refusal is not None:
        return _page(request, "login.html", 429, title="Log in", next=target, username=username,
                     summary=[("username", outcome.refusal.message)],
                     headers={"Retry-After": str(outcome.refusal.seconds)})
    if outcome is None or outcome.user is None:
        return _page(request, "login.html", 401, title="Log in", next=target, username=username,
                     summary=[("username", WRONG)])
    sessions = context.sessions
    try:
        await sessions.end(request.cookies.get(COOKIE))  # a session from before login is never reused
        value = await sessions.create(username, accounts.stamp(username) or "")
    except StoreError as error:
        log.error("a login could not be kept: %s", error.message)
        return _page(request, "login.html", 503, title="Log in", next=target, username=username,
                     summary=[("username", UNAVAILABLE)])
    response = RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})
    sessions.set_cookie(response, request, value)
    return response


@router.get("/logout", response_class=HTMLResponse)
async def logout_form(request: Request) -> Response:
    context = app_context(request)
    user = await session_user(request, context)
    if user is None:
        return RedirectResponse("/login" if context.auth is not None else "/", status_code=303)
    return _page(request, "logout.html", title="Log out", user=user)


@router.post("/logout")
async def logout(request: Request) -> Response:
    context = app_context(request)
    form = await _form(request)
    if isinstance(form, Response):
        return form
    response = RedirectResponse("/login" if context.auth is not None else "/", status_code=303,
                                headers={"Cache-Control": "no-store"})
    if context.auth is not None:
        await context.sessions.end(request.cookies.get(COOKIE))
    context.sessions.clear_cookie(response, request)
    return response


async def _form(request: Request) -> FormData | Response:
    """The posted form once its CSRF checks passed; else the refusal page."""
    try:
        form = await request.form(max_files=0, max_fields=20, max_part_size=_MAX_FIELD * 8)
    except Exception as exc:  # a malformed body: say so, never a traceback
        log.info("an unreadable form was posted to %s: %s", request.url.path, exc)
        return _page(request, "message.html", 400, title="The form could not be read",
                     message="The form could not be read: go back and send it again.")
    refused = csrf.check(request, form)
    if refused is not None:
        return _page(request, "message.html", 403, title="The form was refused",
                     message=refused[0].upper() + refused[1:] + ".")
    return form


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value[:_MAX_FIELD] if isinstance(value, str) else ""


# -- the Gradio tool behind the login -------------------------------------------------------------
class LoginGate:
    """ASGI wrapper for the mounted Gradio app: without a session, a page (a GET of `/`, or a
    browser asking for HTML outside `/gradio_api/`) is a 303 to the login form and anything else a
    401, before Gradio sees the request. With a session the request passes, its login remembered
    for Gradio's `auth_dependency`."""

    def __init__(self, app: ASGIApp, context: AppContext) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.context.auth is None:
            await self.app(scope, receive, send)
            return
        if await session_user(HTTPConnection(scope), self.context) is not None:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        request = Request(scope)
        response: Response
        if _is_page(request):
            response = RedirectResponse(login_url(request.url.path, request.url.query), status_code=303,
                                        headers={"Cache-Control": "no-store"})
        else:
            response = Response('{"detail":"Not authenticated: log in at /login"}', status_code=401,
                                media_type="application/json", headers={"Cache-Control": "no-store"})
        await response(scope, receive, send)


def _is_page(request: Request) -> bool:
    if request.method not in ("GET", "HEAD"):
        return False
    path = request.url.path
    if path == "/" or path.rstrip("/") == "/gradio_api/runs":
        return True
    return not path.startswith("/gradio_api/") and "text/html" in request.headers.get("accept", "")
