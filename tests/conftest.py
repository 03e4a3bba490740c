"""Shared fixtures. No test may reach the internet: sockets to anything but loopback are refused."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator

import pytest

from llmtool.loopback import LoopbackServer
from llmtool.settings import Settings, load_settings
from tests.servers.postgres import PostgresServer
from tests.servers.redis import RedisServer

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_local(address: object) -> bool:
    if isinstance(address, (str, bytes)):  # unix socket path
        return True
    host = address[0] if isinstance(address, tuple) else address
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded(real):
    def connect(self: socket.socket, address: object):  # type: ignore[no-untyped-def]
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address):
            raise ConnectionRefusedError(f"tests may not reach the network: {address!r}")
        return real(self, address)

    return connect


@pytest.fixture(autouse=True, scope="session")
def no_network() -> None:
    socket.socket.connect = _guarded(_real_connect)  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded(_real_connect_ex)  # type: ignore[method-assign]


@pytest.fixture(autouse=True, scope="session")
def session_data_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Module- and session-scoped servers start before any per-test fixture: they too keep their
    runs in a temporary folder, never in the real user's data folder."""
    import os

    before = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("session-data"))
    yield
    if before is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = before


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests see no real keys or config from the machine they run on."""
    import os

    for name in list(os.environ):
        if name.startswith(("OPENAI_", "ANTHROPIC_", "LLMTOOL_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    # The default run store lives in the user's data folder: a fresh one for every test.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data")))


@pytest.fixture
def fast_settings() -> Settings:
    """Settings whose demo model streams instantly and whose retries wait almost nothing."""
    return load_settings(
        demo={"first_token_delay": 0.0, "tokens_per_second": 100_000},
        retry={"initial_delay": 0.01, "max_delay": 0.05, "jitter": 0.0},
    )


@pytest.fixture
def prompts_dir(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """An empty templates directory that `load_settings()` (and so the CLI) uses; demo paced fast."""
    directory = tmp_path / "prompts"
    directory.mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLMTOOL_PROMPTS_DIR", str(directory))
    monkeypatch.setenv("LLMTOOL_DEMO__FIRST_TOKEN_DELAY", "0")
    monkeypatch.setenv("LLMTOOL_DEMO__TOKENS_PER_SECOND", "100000")
    return directory


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the whole test session (started on first use)."""
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server for the whole test session (started on first use); a test takes a
    database of its own with `redis_server.new_url()`."""
    with RedisServer() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """Each backend of the run store in turn: a SQLite file, a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'runs.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.new_database()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's Chromium, driven by pip playwright, for a module's browser tests
    (tests/ui/browser_support.py marks them and skips them where Chromium is missing)."""
    from playwright.sync_api import sync_playwright

    from tests.ui.browser_support import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def loopback() -> Iterator[LoopbackServer]:
    """The loopback provider server (the SDKs' upstream in provider tests), one per test module."""
    with LoopbackServer() as server:
        yield server


@pytest.fixture
def upstream(loopback: LoopbackServer) -> LoopbackServer:
    """The module's loopback server with no records and nothing queued from an earlier test."""
    loopback.reset()
    return loopback
