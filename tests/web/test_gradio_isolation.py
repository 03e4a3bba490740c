"""A Gradio session, its events, uploads and files belong to the login that opened them: another
logged-in user who learns the ids gets 404 from every route (the whole app over HTTP, two users)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llmtool.settings import load_settings
from llmtool.web.app import create_app
from llmtool.web.serve import BackgroundServer
from tests.helpers import log_in, session_client

USERS = {"ann": "pw-ann-long-enough", "bob": "pw-bob-long-enough"}


def check(user: str, password: str) -> bool:
    return USERS.get(user) == password


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    folder = tmp_path_factory.mktemp("isolation")
    settings = load_settings(database_url=f"sqlite+aiosqlite:///{folder / 'runs.db'}", default_model="demo:assistant",
                             demo={"first_token_delay": 0.0, "tokens_per_second": 5})
    with BackgroundServer(create_app(settings, auth=check)) as served:
        yield served


def browser(server: BackgroundServer, user: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=10,
                        cookies={"llmtool_session": log_in(server.url, user, USERS[user])})


def test_another_users_session_id_reads_and_stops_nothing(server: BackgroundServer) -> None:
    ann = session_client(server.url, "ann", USERS["ann"])
    job = ann.submit(prompt="a slow answer for ann", api_name="/chat")
    deadline = time.monotonic() + 10
    while job.status().code.name != "PROCESSING" and time.monotonic() < deadline:
        time.sleep(0.05)
    hash_of_ann = ann.session_hash
    with browser(server, "bob") as bob:
        data = bob.get("/gradio_api/queue/data", params={"session_hash": hash_of_ann})
        assert data.status_code == 404
        stop = bob.post("/gradio_api/cancel", json={"session_hash": hash_of_ann, "fn_index": 0, "event_id": "x"})
        assert stop.status_code == 404
        beat = bob.get(f"/gradio_api/heartbeat/{hash_of_ann}")
        assert beat.status_code == 404
        joined = bob.post("/gradio_api/queue/join", json={"session_hash": hash_of_ann, "fn_index": 0, "data": []})
        assert joined.status_code == 404
    assert not job.done()  # bob's cancel reached nothing: ann's answer goes on
    ann.predict(api_name="/stop")  # ann's own Stop does
    job.result(timeout=10)
    ann.close()


def test_another_users_upload_cannot_be_fetched_or_handed_to_a_handler(server: BackgroundServer,
                                                                        tmp_path: Path) -> None:
    dataset = tmp_path / "cases.csv"
    dataset.write_text("id,text\n1,secret of ann\n")
    with browser(server, "ann") as ann, browser(server, "bob") as bob:
        uploaded = ann.post("/gradio_api/upload", files={"files": ("cases.csv", dataset.read_bytes(), "text/csv")})
        assert uploaded.status_code == 200, uploaded.text
        (path,) = uploaded.json()
        assert ann.get(f"/gradio_api/file={path}").status_code == 200
        fetched = bob.get(f"/gradio_api/file={path}")
        assert fetched.status_code == 404 and "secret of ann" not in fetched.text
        handed = bob.post("/gradio_api/queue/join", json={
            "session_hash": "bob-tab-1", "fn_index": 0, "data": [{"path": path, "meta": {"_type": "gradio.FileData"}}],
        })
        assert handed.status_code == 404


def test_event_ids_of_the_call_api_belong_to_their_caller(server: BackgroundServer) -> None:
    with browser(server, "ann") as ann, browser(server, "bob") as bob:
        started = ann.post("/gradio_api/call/chat", json={"data": ["hello from ann", "demo:assistant", "", 0.7, 20, "stream", False, None, ""]})
        assert started.status_code == 200, started.text
        event_id = started.json()["event_id"]
        assert bob.get(f"/gradio_api/call/chat/{event_id}").status_code == 404
        with ann.stream("GET", f"/gradio_api/call/chat/{event_id}") as answer:
            assert answer.status_code == 200
            answer.read()


def test_other_origins_never_read_answers_with_credentials(server: BackgroundServer) -> None:
    with browser(server, "ann") as ann:
        for path in ("/gradio_api/info", "/config", "/api/models"):
            answer = ann.get(path, headers={"Origin": "http://localhost:9999"})
            assert answer.status_code == 200
            assert not [k for k in answer.headers if k.lower().startswith("access-control-")], path
        preflight = ann.options("/gradio_api/queue/join", headers={
            "Origin": "http://localhost:9999", "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in preflight.headers


def test_a_configured_origin_may_call_the_api_with_credentials(tmp_path: Path) -> None:
    settings = load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'runs.db'}",
                             default_model="demo:assistant", accounts={"allowed_origins": ["https://tools.example"]})
    with BackgroundServer(create_app(settings, auth=check)) as served, browser(served, "ann") as ann:
        preflight = ann.options("/api/runs", headers={"Origin": "https://tools.example",
                                                      "Access-Control-Request-Method": "POST"})
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == "https://tools.example"
        answer = ann.get("/api/models", headers={"Origin": "https://tools.example"})
        assert answer.headers["access-control-allow-credentials"] == "true"
        other = ann.get("/api/models", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_an_admin_sees_every_users_runs_in_history_a_member_only_their_own(tmp_path: Path) -> None:
    from tests.accounts.support import users_file
    from tests.ui.test_ui_history import ids, search

    people = {"ann": USERS["ann"], "bob": USERS["bob"], "root": "pw-root-long-enough"}
    path = users_file(tmp_path, people, {"root": "admin"})
    settings = load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'runs.db'}",
                             default_model="demo:assistant", demo={"first_token_delay": 0.0, "tokens_per_second": 5000},
                             ui={"users_file": str(path)}, store={"flush_interval": 0.05})
    with BackgroundServer(create_app(settings)) as served:  # the users file of the settings
        clients = {user: session_client(served.url, user, password) for user, password in people.items()}
        for user in ("ann", "bob"):
            clients[user].predict(prompt=f"a question of {user}", api_name="/chat")
        deadline = time.monotonic() + 10
        while len(ids(search(clients["root"]))) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(ids(search(clients["root"]))) == 2
        assert len(ids(search(clients["ann"]))) == 1
        for client in clients.values():
            client.close()
        with httpx.Client(base_url=served.url, timeout=10) as http:  # the same through /api
            started = http.post("/api/runs", json={"prompt": "bob's question"}, auth=("bob", people["bob"]))
            assert started.status_code == 202, started.text
            run = started.headers["location"]
            assert http.get(run, auth=("ann", people["ann"])).status_code == 404
            assert http.get(run, auth=("root", people["root"])).status_code == 200
            def listed(user: str) -> int:
                return len(http.get("/api/runs", auth=(user, people[user])).json()["runs"])

            deadline = time.monotonic() + 10
            while listed("root") < 3 and time.monotonic() < deadline:  # ann's, bob's and bob's API run
                time.sleep(0.1)
            assert listed("root") == 3 and listed("ann") == 1
