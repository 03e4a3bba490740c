"""The composition root: one FastAPI app, our routers first, the Gradio tool mounted last at `/`.

    app = create_app(settings, auth=check_password)      # a FastAPI app; serve it with uvicorn
    with BackgroundServer(app) as server:                # tests and benchmarks: a free port
        Client(server.url)

`mount_gradio_app` is `app.mount("/", …)`: a route included after it would never be reached, so
routers (`health.py`, the HTTP API `api.py`, the no-JavaScript pages `lite.py`) are included before it. Gradio's
`auth` covers only the Gradio app; the same check (`context.auth`) guards `/api` with HTTP Basic.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import gradio as gr
from fastapi import FastAPI

from llmtool.settings import Settings
from llmtool.ui.blocks import build_demo, page_options
from llmtool.web import api, health, lite, problems
from llmtool.web.context import AppContext
from llmtool.web.security import SecurityHeaders

Auth = Callable[[str, str], bool]
ROUTERS = [health.router, api.router, lite.router, lite.static]


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
        context.auth = auth  # the API asks for the same login as the Gradio tool
    app_context = context

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await app_context.start()
        try:
            yield
        finally:
            await app_context.aclose()

    context.prepare()  # the store opens (or a StoreError says why not) before anything is served
    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.context = context
    app.add_middleware(SecurityHeaders)
    problems.install(app)  # `/api` errors as problem+json, never a traceback
    lite.install(app)  # `/lite` refusals as pages
    for router in ROUTERS:
        app.include_router(router)
    ui = context.settings.ui
    return gr.mount_gradio_app(
        app, build_demo(context), path="/", auth=auth, server_name=ui.host, server_port=ui.port, **page_options()
    )
