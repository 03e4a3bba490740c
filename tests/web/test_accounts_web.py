"""Accounts over HTTP, the real app and store: hashed users with roles, brute force slowed then
refused (the right password too), the users file read again while serving, sessions and tokens
ended by a new password or a removed user, API tokens made, used and revoked, the proxy header."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmtool.accounts import Accounts
from llmtool.cli import main as cli
from llmtool.web.app import create_app
from llmtool.web.context import AppContext
from llmtool.web.serve import BackgroundServer
from tests.accounts.support import CHEAP, htpasswd_bcrypt, users_file
from tests.helpers import log_in
from tests.web.support import make_settings

PASSWORDS = {"ann": "ann's password", "bob": "bob's password", "root": "root's password"}
ROLES = {"bob": "partner", "root": "admin"}
EASY = {"free_failures": 50, "lock_after": 100}  # the shared server: nobody is locked out by accident


def serve(folder: Path, throttle: dict[str, Any] | None = None, **accounts: Any) -> tuple[BackgroundServer, AppContext]:
    path = users_file(folder, PASSWORDS, ROLES)
    settings = make_settings(None, folder, accounts={"throttle": throttle or EASY, **accounts})
    context = AppContext(settings, accounts=Accounts(settings, users_file=path))
    return BackgroundServer(create_app(context=context)), context


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    server, _ = serve(tmp_path_factory.mktemp("accounts"))
    with server:
        yield server


def login_form(client: httpx.Client, user: str, password: str) -> httpx.Response:
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    return client.post("/login", data={"csrf_token": token, "username": user, "password": password, "next": "/lite"})


# -- logins ---------------------------------------------------------------------------------------
def test_hashed_users_log_in_by_form_and_basic_and_have_their_roles(served: BackgroundServer) -> None:
    with httpx.Client(base_url=served.url, timeout=10) as browser:
        assert login_form(browser, "ann", "wrong password").status_code == 401
        answer = login_form(browser, "ann", PASSWORDS["ann"])
        assert answer.status_code == 303 and answer.headers["location"] == "/lite"
        assert browser.get("/lite").status_code == 200
    assert httpx.get(f"{served.url}/api/runs", auth=("bob", PASSWORDS["bob"]), timeout=10).status_code == 200
    wrong = httpx.get(f"{served.url}/api/runs", auth=("bob", "nope"), timeout=10)
    assert wrong.status_code == 401 and wrong.json()["detail"] == "the user name or password is wrong"
    context: AppContext = served.server.config.app.state.context  # type: ignore[attr-defined]
    assert [context.principal(name).role for name in ("ann", "bob", "root")] == ["member", "partner", "admin"]  # type: ignore[union-attr]
    assert context.principal("nobody") is None


def test_a_bcrypt_line_from_htpasswd_logs_in(tmp_path: Path) -> None:
    server, _ = serve(tmp_path)
    path = tmp_path / "users.txt"
    path.write_text(path.read_text() + f"carl:{htpasswd_bcrypt('carl password')}\n")
    with server:
        time.sleep(1.1)  # the file is looked at once a second
        assert httpx.get(f"{server.url}/api/runs", auth=("carl", "carl password"), timeout=10).status_code == 200
        assert log_in(server.url, "carl", "carl password")


def test_brute_force_is_slowed_then_refused_and_the_right_password_fails_in_the_lock_out(tmp_path: Path) -> None:
    throttle = {"free_failures": 2, "delay": 0.3, "lock_after": 5, "lock_minutes": 1}
    server, _ = serve(tmp_path, throttle=throttle)
    with server, httpx.Client(base_url=server.url, timeout=10) as browser:
        timings, statuses = [], []
        for guess in range(5):
            started = time.monotonic()
            statuses.append(login_form(browser, "ann", f"guess {guess}").status_code)
            timings.append(time.monotonic() - started)
        assert statuses == [401, 401, 401, 401, 429]
        assert timings[0] < 0.25 and timings[1] < 0.25  # the free failures
        assert 0.3 <= timings[2] < 0.55 and 0.6 <= timings[3] < 0.85  # then slower and slower
        locked = login_form(browser, "ann", PASSWORDS["ann"])  # the right one
        assert locked.status_code == 429 and 55 <= int(locked.headers["retry-after"]) <= 60
        assert "Too many failed logins for this user name or from this address: logging in is locked for 1 minute" \
            in unescape(locked.text), re.findall(r'error-summary.*?</ul>', locked.text, re.S)
        assert "llmtool_session" not in locked.cookies
        api = httpx.get(f"{server.url}/api/runs", auth=("ann", PASSWORDS["ann"]), timeout=10)
        assert api.status_code == 429 and api.headers["content-type"] == "application/problem+json"
        problem = api.json()
        assert problem["type"] == "/api/problems/too-many-logins" and problem["status"] == 429
        assert "locked for 1 minute" in problem["detail"] and int(api.headers["retry-after"]) <= 60
        # The address is locked too: another user from it cannot log in either (no hash is checked).
        assert login_form(browser, "bob", PASSWORDS["bob"]).status_code == 429
        lite = browser.get("/lite")
        assert lite.status_code == 303 and lite.headers["location"].startswith("/login")  # /lite goes to the form


def test_parallel_guesses_are_refused_not_hashed(tmp_path: Path) -> None:
    import concurrent.futures

    server, _ = serve(tmp_path, throttle={"free_failures": 2, "delay": 1.0, "lock_after": 100})
    with server, concurrent.futures.ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda i: httpx.get(f"{server.url}/api/runs", auth=("ann", f"guess {i}"), timeout=20),
                                range(40)))
    statuses = [answer.status_code for answer in answers]
    assert statuses.count(401) <= 6 and statuses.count(429) >= 34
    assert all("wait" in a.json()["detail"] for a in answers if a.status_code == 429)


# -- the users file changes while serving ---------------------------------------------------------
def test_a_new_password_or_a_removed_user_ends_sessions_at_once(tmp_path: Path) -> None:
    server, _ = serve(tmp_path)
    with server:
        ann, bob = log_in(server.url, "ann", PASSWORDS["ann"]), log_in(server.url, "bob", PASSWORDS["bob"])
        path = tmp_path / "users.txt"
        # An administrator edits the file (as `llmtool users passwd/remove` would, without the store).
        text = path.read_text().splitlines()
        text = [f"ann:{CHEAP.hash('a new password')}" if line.startswith("ann:") else line
                for line in text if not line.startswith("bob:")]
        path.write_text("\n".join(text) + "\n")
        time.sleep(1.1)
        for cookie in (ann, bob):
            with httpx.Client(base_url=server.url, cookies={"llmtool_session": cookie}, timeout=10) as stale:
                assert stale.get("/").status_code == 303
                assert stale.get("/lite").status_code == 303
                assert stale.get("/api/runs").status_code == 401
        assert httpx.get(f"{server.url}/api/runs", auth=("bob", PASSWORDS["bob"]), timeout=10).status_code == 401
        assert httpx.get(f"{server.url}/api/runs", auth=("ann", PASSWORDS["ann"]), timeout=10).status_code == 401
        assert httpx.get(f"{server.url}/api/runs", auth=("ann", "a new password"), timeout=10).status_code == 200


def test_users_passwd_and_remove_end_sessions_and_tokens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server, context = serve(tmp_path)
    monkeypatch.setenv("LLMTOOL_DATABASE_URL", context.settings.database_url or "")
    monkeypatch.setenv("LLMTOOL_UI__USERS_FILE", str(tmp_path / "users.txt"))
    with server:
        session = log_in(server.url, "ann", PASSWORDS["ann"])
        made = httpx.post(f"{server.url}/api/tokens", json={"name": "ci"}, auth=("ann", PASSWORDS["ann"]), timeout=10)
        token = made.json()["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{server.url}/api/runs", headers=bearer, timeout=10).status_code == 200
        monkeypatch.setattr("sys.stdin", io.StringIO("ann's new password\n"))
        assert cli(["users", "passwd", "ann"]) == 0
        time.sleep(1.1)  # the server looks at the file once a second; the store forgot them at once
        assert httpx.get(f"{server.url}/api/runs", headers=bearer, timeout=10).status_code == 401
        with httpx.Client(base_url=server.url, cookies={"llmtool_session": session}, timeout=10) as stale:
            assert stale.get("/api/runs").status_code == 401
        bobs = httpx.post(f"{server.url}/api/tokens", json={}, auth=("bob", PASSWORDS["bob"]), timeout=10).json()
        assert cli(["users", "remove", "bob"]) == 0
        time.sleep(1.1)
        assert httpx.get(f"{server.url}/api/runs", headers={"Authorization": f"Bearer {bobs['token']}"},
                         timeout=10).status_code == 401


# -- API tokens -----------------------------------------------------------------------------------
def test_tokens_are_made_shown_once_used_listed_and_revoked(served: BackgroundServer) -> None:
    ann, bob = ("ann", PASSWORDS["ann"]), ("bob", PASSWORDS["bob"])
    with httpx.Client(base_url=served.url, timeout=10) as http:
        made = http.post("/api/tokens", json={"name": "nightly eval"}, auth=ann)
        assert made.status_code == 201 and made.headers["cache-control"] == "no-store"
        body = made.json()
        token, token_id = body["token"], body["id"]
        assert token.startswith("llmt_") and len(token) >= 45 and body["name"] == "nightly eval"
        assert made.headers["location"] == f"/api/tokens/{token_id}"
        bearer = {"Authorization": f"Bearer {token}"}
        assert http.get("/api/runs", headers=bearer).status_code == 200
        refused = http.post("/api/tokens", json={}, headers=bearer)
        assert refused.status_code == 401 and "a token cannot make another token" in refused.json()["detail"]
        listed = http.get("/api/tokens", auth=ann).json()["tokens"]
        assert [t["id"] for t in listed] == [token_id] and "token" not in listed[0]
        assert listed[0]["last_used"] is not None
        assert http.get("/api/tokens", auth=bob).json() == {"tokens": []}  # each sees only their own
        assert http.delete(f"/api/tokens/{token_id}", auth=bob).status_code == 404
        assert http.delete(f"/api/tokens/{token_id}", headers=bearer).status_code == 204  # a token may revoke itself
        gone = http.get("/api/runs", headers=bearer)
        assert gone.status_code == 401 and gone.headers["www-authenticate"].startswith("Bearer")
        assert http.get("/api/runs", headers={"Authorization": "Bearer llmt_" + "x" * 43}).status_code == 401
        assert http.delete(f"/api/tokens/{token_id}", auth=ann).status_code == 404
        assert http.post("/api/tokens", content="{}", auth=ann).status_code == 415
        assert http.post("/api/tokens", json={"name": "x" * 101}, auth=ann).status_code == 422
    schema = httpx.get(f"{served.url}/api/openapi.json", auth=ann, timeout=10).json()
    assert {"/api/tokens", "/api/tokens/{token_id}"} <= set(schema["paths"])


def test_a_token_runs_as_its_user(served: BackgroundServer) -> None:
    token = httpx.post(f"{served.url}/api/tokens", json={}, auth=("ann", PASSWORDS["ann"]), timeout=10).json()["token"]
    with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as script:
        started = script.post("/api/runs", json={"model": "demo:echo", "prompt": "hello"})
        assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    deadline = time.monotonic() + 10  # the list reads the store, which the run reaches within a flush
    while run_id not in (mine := [run["id"] for run in listed(served, "ann")]) and time.monotonic() < deadline:
        time.sleep(0.05)
    theirs = httpx.get(f"{served.url}/api/runs", auth=("bob", PASSWORDS["bob"]), timeout=10).json()["runs"]
    assert run_id in mine
    assert started.json()["id"] not in [run["id"] for run in theirs]


def listed(served: BackgroundServer, user: str) -> list[dict]:
    answer = httpx.get(f"{served.url}/api/runs", auth=(user, PASSWORDS[user]), timeout=10)
    runs: list[dict] = answer.json()["runs"]
    return runs


# -- the reverse-proxy header ---------------------------------------------------------------------
def test_a_proxy_user_header_counts_only_from_a_trusted_proxy(tmp_path: Path) -> None:
    header = "X-Forwarded-User"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    trusted, _ = serve(tmp_path / "a", trusted_proxies=["127.0.0.0/8"], proxy_user_header=header)
    untrusted, _ = serve(tmp_path / "b", trusted_proxies=["10.0.0.0/8"], proxy_user_header=header)
    with trusted, untrusted:
        assert httpx.get(f"{trusted.url}/api/runs", headers={header: "ann"}, timeout=10).status_code == 200
        assert httpx.get(f"{trusted.url}/lite", headers={header: "bob"}, timeout=10).status_code == 200
        page = httpx.get(f"{trusted.url}/", headers={header: "ann", "accept": "text/html"}, timeout=10)
        assert page.status_code == 200
        assert httpx.get(f"{trusted.url}/api/runs", headers={header: "mallory"}, timeout=10).status_code == 401
        assert httpx.get(f"{trusted.url}/api/runs", timeout=10).status_code == 401
        assert httpx.get(f"{untrusted.url}/api/runs", headers={header: "ann"}, timeout=10).status_code == 401
        assert httpx.get(f"{untrusted.url}/lite", headers={header: "ann"}, timeout=10).status_code == 303
