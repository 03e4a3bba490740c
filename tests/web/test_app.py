"""The composition root: a route of ours answers beside the mounted Gradio app, behind the same headers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from llmtool.settings import load_settings
from llmtool.web.app import create_app
from llmtool.web.context import AppContext
from llmtool.web.security import SECURITY_HEADERS
from llmtool.web.serve import BackgroundServer


@pytest.fixture(scope="module")
def context() -> AppContext:
    return AppContext(load_settings(default_model="demo:assistant"))


@pytest.fixture(scope="module")
def server(context: AppContext) -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app(context=context)) as server:
        yield server


def test_healthz_answers_beside_gradio_with_the_security_headers(server: BackgroundServer) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        health = http.get("/healthz")
        page = http.get("/")
    assert health.status_code == 200
    assert health.headers["content-type"] == "application/json"
    assert health.json() == {"status": "ok"}
    for name, value in SECURITY_HEADERS.items():
        assert health.headers[name] == value
        assert page.headers[name] == value
    assert page.status_code == 200 and "gradio" in page.text.lower()  # Gradio still serves `/`


def test_the_lifespan_starts_the_context_on_the_servers_loop(server: BackgroundServer, context: AppContext) -> None:
    service = context.started_service()
    assert service is not None  # created by start(), before any request needed it
    with pytest.raises(RuntimeError, match="another event loop"):
        asyncio.run(_service_of(context))


async def _service_of(context: AppContext) -> object:
    return context.service


def test_healthz_needs_no_login(context: AppContext) -> None:
    app = create_app(context=AppContext(context.settings), auth=lambda user, password: False)
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        assert http.get("/gradio_api/info").status_code == 401  # Gradio's own routes need the login


async def test_stop_waits_for_every_page_following_a_run(context: AppContext) -> None:
    # Two tabs restoring one conversation follow the same run: the first to end must not
    # release Stop's wait for the other.
    context.stream_started("r1")
    context.stream_started("r1")
    context.stream_ended("r1")
    waiting = asyncio.create_task(context.wait_stream_ended("r1", timeout=5))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    context.stream_ended("r1")
    await asyncio.wait_for(waiting, 1)
