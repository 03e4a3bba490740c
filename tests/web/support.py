"""What the tests under tests/web share: the settings of a served app (the loopback server as OpenAI, a
SQLite run store in a folder, the demo paced, retries and store flushes fast), and the little clients
that start a run and wait on it, through the JSON API or the no-JavaScript /lite pages."""

from __future__ import annotations

import re
import time
from html import unescape
from pathlib import Path
from typing import Any

import httpx

from llmtool.loopback import LoopbackServer
from llmtool.settings import Settings, load_settings

FAST_TIMEOUTS = {"connect": 2, "first_token": 5, "idle": 5, "total": 20}


def make_settings(loopback: LoopbackServer | None, folder: Path, *, prompts: Path | None = None,
                  first_token_delay: float = 0.0, tokens_per_second: float = 100_000, max_attempts: int = 2,
                  timeouts: dict[str, float] | None = FAST_TIMEOUTS, flush_interval: float = 0.1,
                  **overrides: Any) -> Settings:
    """Settings for a test server whose runs go to `folder`/runs.db. With `loopback`, OpenAI is that
    server; `prompts` is the templates folder (else the default); `timeouts=None` keeps the defaults."""
    values: dict[str, Any] = {
        "default_model": "demo:assistant",
        "database_url": f"sqlite+aiosqlite:///{folder / 'runs.db'}",
        "demo": {"first_token_delay": first_token_delay, "tokens_per_second": tokens_per_second},
        "retry": {"max_attempts": max_attempts, "initial_delay": 0.01, "max_delay": 0.05, "jitter": 0.0},
        "store": {"flush_interval": flush_interval},
    }
    if loopback is not None:
        values |= {"OPENAI_API_KEY": "sk-loopback-secret", "OPENAI_BASE_URL": loopback.openai_base_url}
    if prompts is not None:
        values["prompts_dir"] = str(prompts)
    if timeouts is not None:
        values["timeouts"] = timeouts
    return load_settings(**{**values, **overrides})


# The JSON API


def start_run(http: httpx.Client, body: dict[str, Any]) -> dict:
    """POST a run; it must be accepted (202). Its status object."""
    answer = http.post("/api/runs", json=body)
    assert answer.status_code == 202, answer.text
    return answer.json()


def wait_status(http: httpx.Client, run_id: str, predicate, timeout: float = 10) -> dict:
    """The run's status object once `predicate` holds for it (asked again until then)."""
    deadline = time.monotonic() + timeout
    while True:
        status = http.get(f"/api/runs/{run_id}").json()
        if predicate(status):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.02)


# The /lite pages, with httpx as the browser (a client that keeps cookies)


def token(client: httpx.Client, path: str = "/lite") -> str:
    """The CSRF token of the form at `path` (its cookie stays in the client)."""
    page = client.get(path)
    assert page.status_code == 200, page.text
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def send_form(client: httpx.Client, **fields: str) -> str:
    """Send the /lite form with these fields and a fresh CSRF token: 303 to the run's page, its path."""
    answer = client.post("/lite/runs", data={"csrf_token": token(client), **fields})
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]


def state(page: httpx.Response) -> str:
    """What a run's page says of the run (its live region)."""
    return unescape(re.search(r'<p id="state">(.*?)</p>', page.text, re.S).group(1)).strip()


def check_again(client: httpx.Client, location: str, until, timeout: float = 10) -> httpx.Response:
    """The run's page once `until` holds for its state (the "Check again" button, pressed until then)."""
    deadline = time.monotonic() + timeout
    while True:
        page = client.get(location)
        assert page.status_code == 200
        if until(state(page)):
            return page
        assert time.monotonic() < deadline, state(page)
        time.sleep(0.05)
