"""The composition root: one FastAPI app, our routers first, the Gradio tool mounted last at `/`.

    app = create_app(settings, auth=check_password)      # a FastAPI app; serve it with uvicorn
    with BackgroundServer(app) as server:                # tests and benchmarks: a free port
        Client(server.url)

`mount_gradio_app` is `app.mount("/", …)`: a route included after it would never be reached, so
routers (`health.py`, the login `login.py`, the HTTP API `api.py`, the no-JavaScript pages `lite.py`)
are included before it. With logins configured (`auth`, the password check) llmtool owns the login
for all of them: `/login` makes a server-side session; the Gradio tool is mounted with
`auth_dependency=` reading it (never Gradio's own `auth=`) behind `login.LoginGate`; `/lite` sends a
browser without one to `/login`; `/api` takes HTTP Basic or the session. `/healthz` and `/readyz`
(the balancer's probes, `health.py`) ask nothing. SIGTERM drains before uvicorn stops (`drain.py`).
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import gradio as gr
from fastapi import FastAPI
from starlette.requests import HTTPConnection
from starlette.routing import Mount
from starlette.types import Scope

from llmtool.settings import Settings
from llmtool.ui.api_guard import ApiGuard
from llmtool.ui.blocks import build_demo, page_options
from llmtool.ui.lean_sessions import install_lean_sessions
from llmtool.web import api, health, lite, login, problems
from llmtool.web.context import AppContext
from llmtool.web.cors import CrossOrigin
from llmtool.web.drain import drain_on_signals
from llmtool.web.gradio_sessions import SessionBinding
from llmtool.web.security import SecurityHeaders

Auth = Callable[[str, str], bool]
ROUTERS = [health.router, login.router, api.router, lite.router, lite.static]


def create_app(
    settings: Settings | None = None,
    *,
    context: AppContext | None = None,
    auth: Auth | None = None,
) -> FastAPI:
    """The FastAPI app: routers, then the Gradio tool at `/`; the lifespan starts and closes `context`."""
    if context is None:
        context = AppContext(settings, auth=auth)
    elif settings is not None and settings is not context.settings:
        raise ValueError("pass the settings or a context built from them, not both")
    elif auth is not None:
        context.auth = auth  # one login for the Gradio tool, /api and /lite
    app_context = context

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await app_context.start()
        # SIGTERM / Ctrl+C: drain while still serving, then let uvicorn stop (web/drain.py).
        restore_signals = drain_on_signals(app_context)
        # What start-up built (Gradio's blocks, routes, schemas: ~450k objects) lives as long as
        # the process: keep it out of the collector's full passes, which otherwise stopped the
        # event loop for 0.2 s (1 s at 100 users) mid-stream.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            restore_signals()
            await app_context.aclose()

    context.prepare()  # the store opens (or a StoreError says why not) before anything is served
    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.context = context
    app.add_middleware(SecurityHeaders)
    # Outermost: only the configured origins may read answers with credentials (Gradio's own CORS
    # reflects any localhost origin).
    app.add_middleware(CrossOrigin, allowed=context.settings.accounts.allowed_origins)
    problems.install(app)  # `/api` errors as problem+json, never a traceback
    lite.install(app)  # `/lite` refusals as pages
    for router in ROUTERS:
        app.include_router(router)
    ui = context.settings.ui
    return mount_tool(app, build_demo(context), context, server_name=ui.host, server_port=ui.port, **page_options())


def mount_tool(app: FastAPI, blocks: gr.Blocks, context: AppContext, **options: Any) -> FastAPI:
    """Mount `blocks` at `/` (include every other router first), behind `ApiGuard` (event requests
    checked before Gradio reads them) and the login when there is one:
    Gradio's `auth_dependency` reads the session (its login name is `gr.Request.username`), and
    `login.LoginGate` answers for Gradio when there is none (303 to /login for a page, else 401).
    `app` needs `app.state.context` and `login.router` for the login form."""
    logins = context.auth is not None
    app = gr.mount_gradio_app(app, blocks, path="/", auth_dependency=login.gradio_user(context) if logins else None,
                              **options)
    mounted = [route for route in app.routes if isinstance(route, Mount) and route.path == ""]
    if len(mounted) != 1:
        raise RuntimeError("cannot find the Gradio app mounted at / to put it behind its door and the login")
    install_lean_sessions(mounted[0].app)  # no copy of the whole page's config per session
    # Every event request is checked before Gradio reads it (`ApiGuard`): a clear 4xx, never a bare 500.
    mounted[0].app = ApiGuard(mounted[0].app, blocks, context.redact)
    if logins:
        # Inside the gate, every request has a login: Gradio's session, event and upload ids and its
        # files then belong to the login that first used them (another user gets 404).
        mounted[0].app = SessionBinding(mounted[0].app, _login_of(context), _sees_everything(context))
        mounted[0].app = login.LoginGate(mounted[0].app, context)
    return app


def _login_of(context: AppContext) -> Callable[[Scope], Awaitable[str | None]]:
    async def user_of(scope: Scope) -> str | None:
        return await login.session_user(HTTPConnection(scope), context)

    return user_of


def _sees_everything(context: AppContext) -> Callable[[str], bool]:
    def sees(user: str) -> bool:
        principal = context.principal(user)
        return principal is not None and principal.sees_all_runs

    return sees
