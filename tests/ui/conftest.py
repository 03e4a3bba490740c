"""UI test fixtures: a hermetic environment, the loopback provider, the app on 127.0.0.1, clients.

Everything runs on 127.0.0.1: the app is served by uvicorn in a background thread, the provider
is `llmtool.loopback`, and the settings come from keyword arguments only (no keys, env or
./llmtool.toml of whoever runs the tests).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client

from llmtool.loopback import LoopbackServer
from llmtool.settings import Settings, load_settings
from llmtool.web.app import create_app
from llmtool.web.serve import BackgroundServer
from tests.ui.browser_support import Page
from tests.ui.ui_support import ConfiguredModelLists

LOCAL_MODEL = "local:m"
REPO_PROMPTS = Path(__file__).resolve().parents[2] / "prompts"
_LEAKY_PREFIXES = ("LLMTOOL_", "OPENAI_", "ANTHROPIC_", "GRADIO_WATCH")


@pytest.fixture(scope="module", autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith(_LEAKY_PREFIXES):
                patch.delenv(name)
        patch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        patch.chdir(tmp_path_factory.mktemp("cwd"))  # no ./llmtool.toml
        yield


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def ui_settings(loopback: LoopbackServer, **overrides: Any) -> Settings:
    """The local:m endpoint on the loopback server, short timeouts and retries, a fast demo model,
    the shipped templates and datasets (an absolute path: the tests run in a temp cwd)."""
    base: dict[str, Any] = {
        "endpoints": {"local": {"base_url": loopback.openai_base_url, "models": ["m"]}},
        "default_model": LOCAL_MODEL,
        "timeouts": {"connect": 2, "first_token": 3, "idle": 1, "total": 30},
        "retry": {"initial_delay": 0.05, "max_delay": 0.2, "jitter": 0},
        "demo": {"first_token_delay": 0.05, "tokens_per_second": 400},
        "prompts_dir": REPO_PROMPTS,
    }
    return load_settings(**_merge(base, overrides))


@pytest.fixture(scope="module", autouse=True)
def configured_model_lists(isolated_env: None) -> Iterator[None]:
    """Every service here lists its configured models without asking the loopback server (whose
    models endpoint would take scenarios queued for answers): see `ConfiguredModelLists`."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("llmtool.service.ModelLists", ConfiguredModelLists)
        yield


@pytest.fixture(scope="module")
def loopback(isolated_env: None) -> Iterator[LoopbackServer]:
    with LoopbackServer() as server:
        yield server


@pytest.fixture
def lb(loopback: LoopbackServer) -> LoopbackServer:
    """The module's loopback server with no records and nothing queued."""
    loopback.reset()
    return loopback


@pytest.fixture(scope="module")
def ui_server(loopback: LoopbackServer) -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app(ui_settings(loopback))) as server:
        yield server


@pytest.fixture
def start_ui(loopback: LoopbackServer) -> Iterator[Callable[..., BackgroundServer]]:
    """Start another app with its own settings overrides; stopped after the test."""
    servers: list[BackgroundServer] = []

    def start(**overrides: Any) -> BackgroundServer:
        server = BackgroundServer(create_app(ui_settings(loopback, **overrides))).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def connect() -> Iterator[Callable[[str], Client]]:
    """Gradio clients (one browser session each), closed after the test."""
    clients: list[Client] = []

    def make(url: str) -> Client:
        client = Client(url, verbose=False, download_files=False)
        clients.append(client)
        return client

    yield make
    # close() waits up to 1 s for each heartbeat thread: let them wind down in the background.
    for client in clients:
        threading.Thread(target=client.close, daemon=True).start()


@pytest.fixture
def open_page(browser) -> Iterator:
    pages: list[Page] = []

    def open_(url: str) -> Page:
        pages.append(Page(browser, url))
        return pages[-1]

    yield open_
    for page in pages:
        page.context.close()


def pytest_configure(config: pytest.Config) -> None:
    # Gradio's queue analytics use pandas options that pandas 3 deprecates; not ours to fix.
    config.addinivalue_line("filterwarnings", "ignore::Warning:gradio.queueing")
