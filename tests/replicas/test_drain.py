"""SIGTERM on a real server process (`python app.py`'s uvicorn): it drains. `/readyz` says 503 at once,
new runs are refused with 503 `draining`, a running run keeps streaming and completes within the grace
period; with a short grace the run ends `interrupted`, its text kept. Then the process exits."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
from httpx_sse import connect_sse

from llmtool.store import open_store
from tests.replicas.conftest import words
from tests.replicas.processes import AppProcess


def _stream_after_sigterm(app: AppProcess, prompt_words: int) -> tuple[list[dict], httpx.Response, httpx.Response]:
    """Start a run, read its first text, SIGTERM the server, then read the rest: the events, and the
    answers of /readyz and of a new run asked for while draining."""
    with httpx.Client(base_url=app.url, timeout=10) as http:
        run = http.post("/api/runs", json={"prompt": words(prompt_words)})
        assert run.status_code == 202, run.text
        events: list[dict] = []
        ready = refused = None
        with connect_sse(http, "GET", f"/api/runs/{run.json()['id']}/events") as source:
            for sse in source.iter_sse():
                events.append({"event": sse.event, **json.loads(sse.data)})
                if sse.event == "text" and ready is None:
                    app.terminate()
                    time.sleep(0.3)  # the signal is handled on the server's loop
                    with httpx.Client(base_url=app.url, timeout=5) as other:
                        ready = other.get("/readyz")
                        refused = other.post("/api/runs", json={"prompt": "too late"})
        assert ready is not None and refused is not None
        return events, ready, refused


def test_sigterm_drains_a_running_run_to_its_end(tmp_path) -> None:
    # ~2 s of answer (80 words at 40 tokens/s), a grace of 30 s: it completes.
    with AppProcess(tmp_path, LLMTOOL_DEMO__TOKENS_PER_SECOND="40", LLMTOOL_RUNS__DRAIN_SECONDS="30") as app:
        events, ready, refused = _stream_after_sigterm(app, 80)
        assert ready.status_code == 503 and ready.json()["status"] == "draining", ready.text
        assert refused.status_code == 503, refused.text
        assert refused.json()["type"] == "/api/problems/draining"
        assert "draining" in refused.json()["detail"]
        assert events[-1]["event"] == "completed"
        assert events[-1]["text"].split() == words(80).split()
        assert app.wait(10) in (0, -15), app.output()  # uvicorn re-raises the SIGTERM it handled


def test_sigterm_interrupts_what_outlives_the_grace(tmp_path) -> None:
    # ~10 s of answer, a grace of 1 s: the run ends interrupted with the text written so far.
    with AppProcess(tmp_path, LLMTOOL_DEMO__TOKENS_PER_SECOND="40", LLMTOOL_RUNS__DRAIN_SECONDS="1") as app:
        started = time.monotonic()
        events, ready, _ = _stream_after_sigterm(app, 400)
        assert ready.status_code == 503
        last = events[-1]
        assert last["event"] == "interrupted", last
        streamed = "".join(e["text"] for e in events if e["event"] == "text")
        assert last["text"] and last["text"] == streamed
        assert time.monotonic() - started < 6
        assert app.wait(10) in (0, -15), app.output()
        record = asyncio.run(_stored(app.env["LLMTOOL_DATABASE_URL"], events[0]["run_id"]))
        assert record is not None and record.status == "interrupted"
        assert record.text == last["text"] and record.error_kind == "interrupted"


async def _stored(url: str, run_id: str):  # type: ignore[no-untyped-def]
    store = await open_store(url)
    try:
        return await store.get_run(run_id)
    finally:
        await store.aclose()
