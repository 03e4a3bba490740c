"""Reasoning models through the JSON API: the effort asked for (plain and template runs), refused with a
problem when the model does not take it; `reasoning` and `notice` frames in the event stream, resumed
with Last-Event-ID; the reasoning in the status object, apart from the answer; cost unknown; the live
model lists. httpx is the client, the providers are the offline demo (demo:thinker) and the loopback
server."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from httpx_sse import connect_sse

from llmtool.loopback import LoopbackServer, Scenario
from llmtool.web.app import create_app
from llmtool.web.context import AppContext
from llmtool.web.serve import BackgroundServer
from tests.web.support import make_settings, start_run, wait_status

THINKER = "demo:thinker"
LOOPBACK_MODEL = "openai:gpt-4.1-mini"
SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
          "additionalProperties": False}


def settings(loopback: LoopbackServer, folder: Path):
    return make_settings(loopback, folder, prompts=folder, tokens_per_second=5_000, flush_interval=0.05)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("api-reasoning")
    (folder / "plan.md").write_text("---\nmodel: demo:thinker\nreasoning_effort: high\nvariables:\n  goal: {}\n---\n"
                                    "Plan {{ goal }}.\n")
    (folder / "plain.md").write_text("---\nmodel: demo:assistant\nvariables:\n  goal: {}\n---\nPlan {{ goal }}.\n")
    return folder


@pytest.fixture(scope="module")
def served(loopback: LoopbackServer, folder: Path) -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app(context=AppContext(settings(loopback, folder)))) as server:
        yield server


@pytest.fixture
def upstream(loopback: LoopbackServer, http: httpx.Client) -> LoopbackServer:
    http.get("/api/models")  # listing takes a scenario like any request: have the list cached first
    loopback.reset()
    return loopback


def start(http: httpx.Client, **body) -> dict:
    return start_run(http, {"model": THINKER, "prompt": "Plan a picnic", "reasoning_effort": "minimal", **body})


def frames(http: httpx.Client, run_id: str, **headers: str) -> list[tuple[int, str, dict]]:
    with connect_sse(http, "GET", f"/api/runs/{run_id}/events", headers=headers) as source:
        return [(int(sse.id), sse.event, json.loads(sse.data)) for sse in source.iter_sse()]


def stored_request(folder: Path, run_id: str) -> dict:
    deadline = time.monotonic() + 5
    while True:
        with sqlite3.connect(folder / "runs.db") as db:
            row = db.execute("select request from runs where id = ?", (run_id,)).fetchone()
        if row is not None:
            return json.loads(row[0])
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_thinking_run_streams_reasoning_frames_before_its_text_and_resumes(http: httpx.Client) -> None:
    run = start(http)
    assert run["reasoning"] == "" and "thinking_s" in run
    sent = frames(http, run["id"])
    ids = [position for position, _, _ in sent]
    assert ids == list(range(len(sent)))  # id: the event's position, none missing
    kinds = [kind for _, kind, _ in sent]
    assert kinds[0] == "started" and kinds[-1] == "completed"
    first_text = kinds.index("text")
    assert "reasoning" in kinds[:first_text] and "reasoning" not in kinds[first_text:]  # thoughts, then the answer
    assert all(data["kind"] == kind for _, kind, data in sent)
    thoughts = "".join(data["text"] for _, kind, data in sent if kind == "reasoning")
    answer = "".join(data["text"] for _, kind, data in sent if kind == "text")
    assert "Understanding the request" in thoughts and "Understanding the request" not in answer

    # Resume from the middle of the thoughts: the rest, the same frames, from the next position on.
    middle = [position for position, kind, _ in sent if kind == "reasoning"][3]
    rest = frames(http, run["id"], **{"Last-Event-ID": str(middle)})
    assert rest == sent[middle + 1:]

    done = wait_status(http, run["id"], lambda s: s["status"] == "completed")
    assert done["reasoning"] == thoughts and done["text"] == answer
    assert 0.3 < done["thinking_s"] < 3
    metrics = done["metrics"]
    assert metrics["reasoning_tokens"] > 0 and metrics["thinking_time"] == pytest.approx(done["thinking_s"], abs=0.01)
    assert {"cache_write_tokens", "cost_usd"} <= set(metrics)
    time.sleep(0.3)  # stored: the store answers for it now, alike
    stored = http.get(f"/api/runs/{run['id']}").json()
    assert (stored["reasoning"], stored["text"], stored["thinking_s"]) == (thoughts, answer, done["thinking_s"])
    listed = http.get("/api/runs", params={"limit": 5}).json()["runs"]
    assert next(r for r in listed if r["id"] == run["id"])["reasoning"] == thoughts


def test_while_it_thinks_the_status_says_so(http: httpx.Client, served: BackgroundServer) -> None:
    run = start(http, reasoning_effort="low")  # a second of thinking
    thinking = wait_status(http, run["id"], lambda s: s["reasoning"] and not s["text"])
    assert thinking["status"] == "running" and thinking["thinking_s"] is not None
    http.post(f"/api/runs/{run['id']}/cancel")


def test_effort_none_thinks_not_at_all(http: httpx.Client) -> None:
    run = start(http, reasoning_effort="none")
    kinds = [kind for _, kind, _ in frames(http, run["id"])]
    assert "reasoning" not in kinds and kinds[-1] == "completed"
    done = wait_status(http, run["id"], lambda s: s["status"] == "completed")
    assert done["reasoning"] == "" and done["thinking_s"] is None


def test_a_template_run_takes_the_effort_and_prompt_caching_as_overrides(http: httpx.Client, folder: Path) -> None:
    answer = http.post("/api/runs", json={"template": "plan", "variables": {"goal": "a picnic"},
                                          "reasoning_effort": "minimal", "cache_prompt": True})
    assert answer.status_code == 202, answer.text
    run_id = answer.json()["id"]
    done = wait_status(http, run_id, lambda s: s["status"] == "completed")
    assert done["thinking_s"] < 2  # minimal (0.6 s), not the template's high (3.5 s)
    request = stored_request(folder, run_id)
    assert (request["reasoning_effort"], request["cache_prompt"], request["template"]) == ("minimal", True, "plan")


@pytest.mark.parametrize(("body", "words"), [
    ({"template": "plain", "variables": {"goal": "x"}, "reasoning_effort": "low"},
     "demo:assistant is not a reasoning model: leave the reasoning effort unset"),
    ({"model": "demo:echo", "prompt": "hi", "reasoning_effort": "high"},
     "demo:echo is not a reasoning model: leave the reasoning effort unset"),
    ({"prompt": "hi", "reasoning_effort": "lots"}, "reasoning_effort"),
])
def test_an_effort_the_model_does_not_take_is_a_422_problem_with_the_sentence(http: httpx.Client, body, words) -> None:
    answer = http.post("/api/runs", json=body)
    assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"] == "/api/problems/invalid-request" and words in problem["detail"]


def test_a_refused_effort_ties_no_idempotency_key(http: httpx.Client) -> None:
    key = {"Idempotency-Key": f"effort-{time.monotonic_ns()}"}
    refused = http.post("/api/runs", json={"model": "demo:assistant", "prompt": "hi", "reasoning_effort": "low"},
                        headers=key)
    assert refused.status_code == 422
    fixed = http.post("/api/runs", json={"model": "demo:assistant", "prompt": "hi"}, headers=key)
    assert fixed.status_code == 202 and "idempotent-replayed" not in fixed.headers


def test_a_notice_frame_says_the_schema_is_asked_by_instruction(http: httpx.Client, upstream: LoopbackServer) -> None:
    upstream.enqueue(Scenario(reject_structured_output=True), Scenario(text='{"ok": true}', tokens_per_second=2000))
    answer = http.post("/api/runs", json={"model": LOOPBACK_MODEL, "prompt": "Is it ok?",
                                          "validation": {"json_schema": SCHEMA}})
    assert answer.status_code == 202, answer.text
    sent = frames(http, answer.json()["id"])
    notice = next(data for _, kind, data in sent if kind == "notice")
    assert "cannot be asked for structured output" in notice["message"]
    kinds = [kind for _, kind, _ in sent]
    assert kinds.index("notice") < kinds.index("text") and kinds[-1] == "completed"


def test_a_model_without_a_price_runs_with_its_cost_unknown(http: httpx.Client, upstream: LoopbackServer) -> None:
    upstream.enqueue(Scenario(tokens_per_second=2000))
    answer = http.post("/api/runs", json={"model": "openai:gpt-9-preview", "prompt": "hi"})
    assert answer.status_code == 202, answer.text
    done = wait_status(http, answer.json()["id"], lambda s: s["status"] == "completed")
    assert done["metrics"]["cost_usd"] is None and done["text"]


def test_models_are_the_providers_live_lists_with_efforts_and_prices(http: httpx.Client, upstream) -> None:
    listed = http.get("/api/models").json()
    assert listed["default"] == "demo:assistant"
    providers = {p["provider"]: p for p in listed["providers"]}
    assert providers["openai"]["live"] is True and providers["openai"]["problem"] is None
    assert providers["demo"]["live"] is False and "demo:thinker" in providers["demo"]["models"]
    models = {m["id"]: m for m in listed["models"]}
    assert set(providers["openai"]["models"]) <= set(models)
    thinker = models["demo:thinker"]
    assert {"minimal", "low"} <= set(thinker["efforts"]) and thinker["priced"] is True
    assert models["demo:assistant"]["efforts"] == []
    for model in models.values():  # the fields clients had before are all there
        assert {"id", "provider", "name", "kind", "input_price", "output_price", "priced", "efforts"} <= set(model)
    assert "sk-loopback" not in json.dumps(listed)


def test_a_provider_that_cannot_list_offers_its_configured_models_and_says_why(loopback: LoopbackServer,
                                                                              tmp_path: Path) -> None:
    loopback.reset()
    loopback.enqueue_models(Scenario.preset("unauthorized"))
    with BackgroundServer(create_app(context=AppContext(settings(loopback, tmp_path)))) as server:
        listed = httpx.get(f"{server.url}/api/models", timeout=10).json()
    openai = next(p for p in listed["providers"] if p["provider"] == "openai")
    assert openai["live"] is False and openai["problem"] and "sk-loopback" not in openai["problem"]
    assert LOOPBACK_MODEL in openai["models"]


def test_the_schema_documents_effort_reasoning_and_the_model_lists(http: httpx.Client) -> None:
    schema = http.get("/api/openapi.json").json()
    components = schema["components"]["schemas"]
    effort = components["CreateRun"]["properties"]["reasoning_effort"]
    assert "minimal" in json.dumps(effort) and "cache_prompt" in components["CreateRun"]["properties"]
    assert {"reasoning", "thinking_s"} <= set(components["RunStatusBody"]["properties"])
    assert {"providers", "models"} <= set(components["ModelList"]["properties"])
    from openapi_spec_validator import validate  # a test dependency: the schema must be valid OpenAPI

    validate(schema)
