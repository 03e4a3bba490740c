"""Fairness through Gradio: with logins, the tool's run events wait in the service's per-user line,
not in one first-come-first-served Gradio queue, so a second user's answer starts while the first
user's burst is queued (the figures: bench/bench_gradio_fairness.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from llmtool.ui.fairness import thread_cap
from llmtool.ui.streams import RUNS
from tests.accounts.support import users_file
from tests.helpers import session_client
from tests.ui.ui_support import wait_for

USERS = {"ann": "ann's long password", "bob": "bob's long password"}
STATUS = 1  # /chat's outputs as a client sees them: chat, status, validation, prompt, Stop
BURST = 8


def statuses(job: Any) -> list[str]:
    return [o[STATUS] for o in job.outputs() if isinstance(o[STATUS], str)]


def test_a_second_users_answer_starts_while_the_first_users_burst_waits(start_ui, tmp_path: Path) -> None:
    # 4 slots, one kept for others: ann streams 3 at a time, the rest of her burst waits in her line.
    server = start_ui(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'runs.db'}",
        ui={"users_file": str(users_file(tmp_path, USERS)), "concurrency": 4},
        runs={"max_concurrent": 4, "user_headroom": 1, "max_waiting_per_user": 100},
        demo={"first_token_delay": 0.05, "tokens_per_second": 20},
    )
    ann = session_client(server.url, "ann", USERS["ann"])
    bob = session_client(server.url, "bob", USERS["bob"])
    try:
        # ~4 s each: before, Gradio's limit (ui.concurrency, 4) let 4 of them in and queued the rest,
        # and bob behind them, for as long as one of ann's answers.
        burst = [ann.submit("Write a short story about a lighthouse", "demo:assistant", "", "", 80, api_name="/chat")
                 for _ in range(BURST)]
        wait_for(lambda: sum(any("Waiting to start" in s for s in statuses(j)) for j in burst) >= 4,
                 timeout=10, what="ann's runs beyond her share waiting in her own line")
        asked = time.monotonic()
        quick = bob.submit("Hi there", "demo:echo", "", "", 2, api_name="/chat")
        wait_for(lambda: any(s.startswith(("Streaming", "Done")) for s in statuses(quick)), timeout=10,
                 what="bob's answer")
        waited = time.monotonic() - asked
        assert not all(job.done() for job in burst)  # ann's burst was still there
        assert waited < 1.5, f"bob waited {waited:.2f} s for his first token"
    finally:
        ann.close()
        bob.close()


def test_every_run_event_is_unlimited_with_logins_and_limited_without(tmp_path: Path) -> None:
    from llmtool.settings import load_settings
    from llmtool.ui.blocks import build_demo
    from llmtool.web.context import AppContext

    base = {"database_url": f"sqlite+aiosqlite:///{tmp_path / 'runs.db'}", "demo": {"first_token_delay": 0}}
    logins = {"users_file": str(users_file(tmp_path, USERS)), "concurrency": 4}
    for ui, expected in ((logins, None), ({"concurrency": 4}, 4)):
        demo = build_demo(AppContext(load_settings(**base, ui=ui)))
        limits = {fn.api_name: fn.concurrency_limit for fn in demo.fns.values() if fn.concurrency_id == RUNS}
        assert {"chat", "regenerate", "run_template", "compare", "evaluate"} <= set(limits)
        assert set(limits.values()) == {expected}, limits
        settings = load_settings(**base, ui=ui)
        assert demo.max_threads == thread_cap(settings, expected)
    assert thread_cap(settings, None) > settings.runs.max_concurrent + settings.ui.queue_size  # runs and waiting
    assert thread_cap(settings, 4) == settings.ui.max_threads == 64
    assert thread_cap(load_settings(ui={"concurrency": 100, "max_threads": 40}), 100) == 100
