"""The JSON API through a real server: 202 + Location, SSE frames and resume, replay, cancel, idempotency,
conversations, problem answers, logins. httpx is the client, httpx-sse reads the streams, the provider
is the loopback server (or the offline demo)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from httpx_sse import connect_sse

from llmtool.loopback import LoopbackServer, Scenario
from llmtool.web.app import create_app
from llmtool.web.context import AppContext
from llmtool.web.serve import BackgroundServer
from tests.web.support import make_settings, start_run, wait_status

MODEL = "openai:gpt-4.1-mini"


@pytest.fixture(scope="module")
def context(loopback: LoopbackServer, tmp_path_factory: pytest.TempPathFactory) -> AppContext:
    return AppContext(make_settings(loopback, tmp_path_factory.mktemp("api")))


@pytest.fixture(scope="module")
def served(context: AppContext) -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app(context=context)) as server:
        yield server


def slow(tokens_per_second: float = 100) -> Scenario:
    return Scenario(tokens_per_second=tokens_per_second)


def start(http: httpx.Client, **body) -> dict:
    return start_run(http, {"model": MODEL, "prompt": "Tell me a story", **body})


def read_events(http: httpx.Client, run_id: str, headers: dict | None = None, params: dict | None = None,
                limit: int | None = None) -> list:
    seen = []
    with connect_sse(http, "GET", f"/api/runs/{run_id}/events", headers=dict(headers or {}), params=params) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        for sse in source.iter_sse():
            seen.append(sse)
            if limit is not None and len(seen) >= limit:
                break
    return seen


def test_post_answers_202_with_location_and_the_status_object(http: httpx.Client, upstream: LoopbackServer) -> None:
    began = time.monotonic()
    answer = http.post("/api/runs", json={"model": MODEL, "prompt": "Hello"})
    assert time.monotonic() - began < 2
    assert answer.status_code == 202
    status = answer.json()
    assert answer.headers["location"] == f"/api/runs/{status['id']}" == status["links"]["self"]
    assert status["status"] == "running" and status["model"] == MODEL
    assert set(status) >= {"id", "status", "model", "created_at", "elapsed_s", "text", "metrics", "validation",
                           "error", "conversation_id", "events", "links"}
    done = wait_status(http, status["id"], lambda s: s["status"] == "completed")
    assert done["text"].startswith("Loopback servers") and done["metrics"]["output_tokens"] > 0
    assert "sk-loopback-secret" not in json.dumps(done)


def test_the_stream_has_positions_kinds_and_the_events_as_json(http: httpx.Client, upstream: LoopbackServer) -> None:
    run = start(http)
    events = read_events(http, run["id"])
    assert [int(e.id) for e in events] == list(range(len(events)))
    kinds = [e.event for e in events]
    assert kinds[0] == "started" and kinds[-1] == "completed" and "text" in kinds
    data = [json.loads(e.data) for e in events]
    assert all(d["kind"] == e.event for d, e in zip(data, events, strict=True))
    text = "".join(d["text"] for d in data if d["kind"] == "text")
    assert text == data[-1]["text"] == http.get(f"/api/runs/{run['id']}").json()["text"]


def test_a_reader_that_reconnects_with_last_event_id_gets_exactly_the_rest(http: httpx.Client, upstream: LoopbackServer) -> None:
    upstream.enqueue(slow(150))
    run = start(http)
    first = read_events(http, run["id"], limit=5)  # the reader goes away after 5 events
    assert [e.id for e in first] == ["0", "1", "2", "3", "4"]
    rest = read_events(http, run["id"], headers={"Last-Event-ID": "4"}, params={"after": "1"})  # the header wins
    ids = [int(e.id) for e in first + rest]
    assert ids == list(range(len(ids)))  # nothing lost, nothing twice
    assert rest[-1].event == "completed"
    assert upstream.requests[0].closed_by_client is False  # leaving never stopped the run
    again = read_events(http, run["id"], params={"after": "2"})
    assert [int(e.id) for e in again] == list(range(3, len(ids)))


def test_a_finished_run_replays_from_the_store_after_it_left_memory(http: httpx.Client, context: AppContext,
                                                                     upstream: LoopbackServer) -> None:
    run = start(http)
    live = read_events(http, run["id"])
    service = context.started_service()
    deadline = time.monotonic() + 5
    while service.get(run["id"]) is not None:
        assert time.monotonic() < deadline, "the run never left memory"
        time.sleep(0.02)
    replayed = read_events(http, run["id"])
    assert [(e.id, e.event, e.data) for e in replayed] == [(e.id, e.event, e.data) for e in live]
    assert http.get(f"/api/runs/{run['id']}").json()["events"] == len(live)


def test_asking_at_or_past_the_terminal_event_gets_204(http: httpx.Client, upstream: LoopbackServer) -> None:
    run = start(http)
    events = read_events(http, run["id"])
    last = events[-1].id
    assert http.get(f"/api/runs/{run['id']}/events", headers={"Last-Event-ID": last}).status_code == 204
    assert http.get(f"/api/runs/{run['id']}/events", params={"after": int(last) + 5}).status_code == 204
    tail = read_events(http, run["id"], headers={"Last-Event-ID": str(int(last) - 1)})
    assert [e.id for e in tail] == [last]


def test_cancel_stops_the_run_and_closes_the_upstream_connection(http: httpx.Client, upstream: LoopbackServer) -> None:
    upstream.enqueue(slow(20))
    run = start(http)
    wait_status(http, run["id"], lambda s: s["text"])
    began = time.monotonic()
    answer = http.post(f"/api/runs/{run['id']}/cancel")
    assert time.monotonic() - began < 2
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "stopped" and body["cancel_requested"] is True and body["text"]
    record = upstream.wait_closed(0)
    assert record.closed_by_client
    assert record.deltas_sent < 50
    again = http.post(f"/api/runs/{run['id']}/cancel")
    assert again.status_code == 200 and again.json()["cancel_requested"] is False
    assert "already ended (stopped)" in again.json()["detail"]


def test_one_idempotency_key_starts_one_run_even_when_two_posts_race(http: httpx.Client, served: BackgroundServer,
                                                                      upstream: LoopbackServer) -> None:
    answers: list[httpx.Response] = []

    def post() -> None:
        with httpx.Client(base_url=served.url, timeout=10) as client:
            answers.append(client.post("/api/runs", json={"model": MODEL, "prompt": "once"},
                                       headers={"Idempotency-Key": "order-42"}))

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [202, 202]
    assert answers[0].json()["id"] == answers[1].json()["id"]
    wait_status(http, answers[0].json()["id"], lambda s: s["status"] == "completed")
    later = http.post("/api/runs", json={"model": MODEL, "prompt": "once"}, headers={"Idempotency-Key": "order-42"})
    assert later.status_code == 202 and later.json()["id"] == answers[0].json()["id"]
    assert later.headers["idempotent-replayed"] == "true"
    assert len(upstream.requests) == 1


def test_a_conversation_continues_from_its_stored_turns_one_question_at_a_time(http: httpx.Client, upstream: LoopbackServer) -> None:
    first = start(http, prompt="My name is Ann.")
    first_done = wait_status(http, first["id"], lambda s: s["status"] == "completed")
    upstream.enqueue(slow(50))
    second = start(http, prompt="What is my name?", conversation_id=first["conversation_id"])
    assert second["conversation_id"] == first["conversation_id"] and second["position"] == 1
    busy = http.post("/api/runs", json={"model": MODEL, "prompt": "And?", "conversation_id": first["conversation_id"]})
    assert busy.status_code == 409 and busy.headers["content-type"] == "application/problem+json"
    assert busy.json()["type"] == "/api/problems/conversation-busy"
    sent = upstream.wait_for_requests(2)[1].body["input"]
    said = json.dumps(sent)
    assert "My name is Ann." in said and first_done["text"][:40] in said and "What is my name?" in said
    http.post(f"/api/runs/{second['id']}/cancel")
    both = http.post("/api/runs", json={"model": MODEL, "messages": [{"role": "user", "content": "x"}],
                                        "conversation_id": first["conversation_id"]})
    assert both.status_code == 422


PROBLEMS = [
    # (what, body or raw bytes, content type, status, problem type, words in the detail)
    ("empty prompt", {"prompt": "  "}, None, 422, "invalid-request", "the prompt is empty"),
    ("unknown provider", {"model": "nope:x", "prompt": "hi"}, None, 422, "unknown-model", "unknown provider 'nope'"),
    ("unknown model", {"model": "demo:nothing", "prompt": "hi"}, None, 422, "unknown-model", "unknown model 'nothing'"),
    ("unknown effort", {"prompt": "hi", "reasoning_effort": "extreme"}, None, 422, "invalid-request", "reasoning_effort"),
    ("effort for a model that does not reason", {"model": "demo:assistant", "prompt": "hi", "reasoning_effort": "low"},
     None, 422, "invalid-request", "demo:assistant is not a reasoning model: leave the reasoning effort unset"),
    ("unknown template", {"template": "nope"}, None, 422, "unknown-template", "unknown template 'nope'"),
    ("bad temperature type", {"prompt": "hi", "temperature": "hot"}, None, 422, "invalid-request", "temperature"),
    ("temperature out of range", {"prompt": "hi", "temperature": 9}, None, 422, "invalid-request", "temperature"),
    ("NaN temperature", b'{"prompt": "hi", "temperature": NaN}', "application/json", 422, "invalid-request", "NaN"),
    ("unknown field", {"prompt": "hi", "colour": "red"}, None, 422, "invalid-request", "colour"),
    ("python rule from a request", {"prompt": "hi", "validation": {"python": "os:system"}}, None, 422, "invalid-request", "validation.python"),
    ("prompt with a template", {"template": "summarise", "prompt": "hi"}, None, 422, "invalid-request", "template"),
    ("not an object", b"[1, 2]", "application/json", 422, "invalid-request", "JSON object"),
    ("broken JSON", b'{"prompt": ', "application/json", 422, "invalid-request", "not valid JSON"),
    ("not JSON", b"prompt=hi", "application/x-www-form-urlencoded", 415, "unsupported-media-type", "must be JSON"),
    ("body too large", b'{"prompt": "' + b"x" * 2_000_000 + b'"}', "application/json", 413, "body-too-large", "limit"),
    ("unknown conversation", {"prompt": "hi", "conversation_id": "nothing-here"}, None, 404, "not-found", "no conversation"),
]


@pytest.mark.parametrize(("what", "body", "content_type", "status", "kind", "words"), PROBLEMS, ids=[p[0] for p in PROBLEMS])
def test_every_bad_request_gets_a_problem(http: httpx.Client, what, body, content_type, status, kind, words) -> None:
    began = time.monotonic()
    if isinstance(body, bytes):
        answer = http.post("/api/runs", content=body, headers={"content-type": content_type})
    else:
        answer = http.post("/api/runs", json=body)
    assert time.monotonic() - began < 2
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"] == f"/api/problems/{kind}" and problem["status"] == status
    assert words in problem["detail"] and "Traceback" not in answer.text


@pytest.mark.parametrize(("method", "path", "status", "kind"), [
    ("GET", "/api/runs/unknown-run", 404, "not-found"),
    ("GET", "/api/runs/unknown-run/events", 404, "not-found"),
    ("POST", "/api/runs/unknown-run/cancel", 404, "not-found"),
    ("GET", "/api/nothing-here", 404, "not-found"),
    ("DELETE", "/api/runs", 405, "method-not-allowed"),
    ("GET", "/api/runs?limit=many", 422, "invalid-request"),
    ("GET", "/api/runs?status=happy", 422, "invalid-request"),
])
def test_unknown_things_and_bad_queries_are_problems(http: httpx.Client, method, path, status, kind) -> None:
    answer = http.request(method, path)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == f"/api/problems/{kind}"


def test_a_bad_last_event_id_is_a_problem(http: httpx.Client, upstream: LoopbackServer) -> None:
    run = start(http)
    answer = http.get(f"/api/runs/{run['id']}/events", headers={"Last-Event-ID": "soon"})
    assert answer.status_code == 422 and "Last-Event-ID" in answer.json()["detail"]


def test_history_pages_newest_first_with_a_cursor(http: httpx.Client, upstream: LoopbackServer) -> None:
    ids = [start(http, prompt=f"history {n}")["id"] for n in range(3)]
    for run_id in ids:
        wait_status(http, run_id, lambda s: s["status"] == "completed")
    time.sleep(0.3)  # the store's writer
    first = http.get("/api/runs", params={"limit": 2, "q": "history"}).json()
    assert [r["id"] for r in first["runs"]] == ids[::-1][:2] and first["next_cursor"] is not None
    second = http.get("/api/runs", params={"limit": 2, "q": "history", "cursor": first["next_cursor"]}).json()
    assert [r["id"] for r in second["runs"]] == ids[:1]
    assert http.get("/api/runs", params={"status": "failed", "q": "history"}).json()["runs"] == []


def test_models_templates_and_the_schema(http: httpx.Client) -> None:
    models = http.get("/api/models").json()
    assert models["default"] == "demo:assistant" and MODEL in [m["id"] for m in models["models"]]
    assert "sk-loopback" not in http.get("/api/models").text
    assert isinstance(http.get("/api/templates").json()["templates"], list)
    schema = http.get("/api/openapi.json").json()
    assert {"/api/runs", "/api/runs/{run_id}", "/api/runs/{run_id}/events", "/api/runs/{run_id}/cancel"} <= set(schema["paths"])
    assert "CreateRun" in schema["components"]["schemas"]


def test_the_docs_page_loads_its_assets_from_our_origin_without_inline_script(http: httpx.Client) -> None:
    page = http.get("/api/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert "<script>" not in page.text and "http://" not in page.text and "https://" not in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "docs.js"):
        answer = http.get(f"/api/docs/assets/{asset}")
        assert answer.status_code == 200 and len(answer.content) > 100
    assert http.get("/api/docs/assets/..%2Fcore.py").status_code == 404


def test_a_full_server_turns_new_runs_away_with_503(loopback: LoopbackServer, tmp_path) -> None:
    loopback.reset()
    loopback.enqueue(slow(20))
    context = AppContext(make_settings(loopback, tmp_path, ui={"queue_size": 1}))
    with BackgroundServer(create_app(context=context)) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        run = start(http)
        busy = http.post("/api/runs", json={"model": MODEL, "prompt": "one more"})
        assert busy.status_code == 503 and busy.headers["retry-after"]
        assert busy.json()["type"] == "/api/problems/busy"
        http.post(f"/api/runs/{run['id']}/cancel")


def test_with_logins_the_api_needs_basic_auth_and_shows_each_user_only_their_runs(loopback: LoopbackServer, tmp_path) -> None:
    loopback.reset()
    users = {"ann": "pw-ann", "bob": "pw-bob"}
    context = AppContext(make_settings(loopback, tmp_path))
    app = create_app(context=context, auth=lambda user, password: users.get(user) == password)
    with BackgroundServer(app) as server:
        anonymous = httpx.get(f"{server.url}/api/runs", timeout=10)
        assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Basic")
        assert anonymous.headers["content-type"] == "application/problem+json"
        wrong = httpx.get(f"{server.url}/api/openapi.json", auth=("ann", "nope"), timeout=10)
        assert wrong.status_code == 401 and "pw-ann" not in wrong.text
        with httpx.Client(base_url=server.url, auth=("ann", "pw-ann"), timeout=10) as ann, \
                httpx.Client(base_url=server.url, auth=("bob", "pw-bob"), timeout=10) as bob:
            run = start(ann, model="demo:assistant")
            assert bob.get(f"/api/runs/{run['id']}").status_code == 404
            assert bob.get(f"/api/runs/{run['id']}/events").status_code == 404
            assert bob.post(f"/api/runs/{run['id']}/cancel").status_code == 404
            done = wait_status(ann, run["id"], lambda s: s["status"] == "completed")
            assert done["text"]
            time.sleep(0.3)
            assert bob.get(f"/api/runs/{run['id']}").status_code == 404  # from the store too
            assert bob.post("/api/runs", json={"prompt": "x", "conversation_id": run["conversation_id"]}).status_code == 404
            assert [r["id"] for r in ann.get("/api/runs").json()["runs"]] == [run["id"]]
            assert bob.get("/api/runs").json()["runs"] == []
            assert ann.get("/api/docs").status_code == 200
