"""The login: the /login form, sessions in the run store, the Gradio tool, /api and /lite behind it.

httpx against the whole app (two users, ann and bob), and `Sessions` against a real store with a
clock the tests move.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmtool.settings import Settings, load_settings
from llmtool.store import SessionRecord, open_store
from llmtool.web import lite
from llmtool.web.app import create_app
from llmtool.web.context import AppContext
from llmtool.web.login import safe_next
from llmtool.web.security import CONTENT_SECURITY_POLICY
from llmtool.web.serve import BackgroundServer
from llmtool.web.sessions import TOUCH_EVERY, Sessions
from tests.helpers import log_in

USERS = {"ann": "pw-ann", "bob": "pw-bob"}


def check(user: str, password: str) -> bool:
    return USERS.get(user) == password


def settings_for(database: Path, **extra: Any) -> Settings:
    return load_settings(database_url=f"sqlite+aiosqlite:///{database}", default_model="demo:assistant",
                         demo={"first_token_delay": 0.0, "tokens_per_second": 2000}, **extra)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app(settings_for(tmp_path / "runs.db"), auth=check)) as served:
        yield served


def form_token(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found.group(1)


def post_login(browser: httpx.Client, user: str, password: str, next: str = "/") -> httpx.Response:
    token = form_token(browser.get("/login", params={"next": next}))
    return browser.post("/login", data={"csrf_token": token, "username": user, "password": password, "next": next})


# -- anonymous ------------------------------------------------------------------------------------
def test_without_a_session_pages_redirect_to_the_login_and_the_rest_says_401(server: BackgroundServer) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as anonymous:
        page = anonymous.get("/", headers={"accept": "text/html"})
        assert page.status_code == 303 and page.headers["location"] == "/login?next=%2F"
        assert "gradio_api_info" not in page.text and "demo:assistant" not in page.text  # no API description
        assert anonymous.get("/?__theme=dark").headers["location"] == "/login?next=%2F%3F__theme%3Ddark"
        for path in ("/gradio_api/info", "/config", "/gradio_api/openapi.json", "/theme.css"):
            refused = anonymous.get(path)
            assert refused.status_code == 401 and "demo:assistant" not in refused.text, path
        assert anonymous.post("/gradio_api/queue/join", json={}).status_code == 401
        assert anonymous.post("/gradio_api/cancel", json={"session_hash": "x", "fn_index": 0,
                                                          "event_id": "y"}).status_code == 401
        assert anonymous.get("/gradio_api/info", headers={"accept": "text/html"}).status_code == 401
        lite_page = anonymous.get("/lite/runs/abc")
        assert lite_page.status_code == 303 and lite_page.headers["location"] == "/login?next=%2Flite%2Fruns%2Fabc"
        api = anonymous.get("/api/runs")
        assert api.status_code == 401 and api.headers["www-authenticate"].startswith("Basic")
        assert anonymous.get("/healthz").json() == {"status": "ok"}


def test_the_login_form_works_without_javascript_and_sends_the_lite_headers(server: BackgroundServer) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as browser:
        form = browser.get("/login", params={"next": "/lite"})
        assert form.status_code == 200 and form.headers["content-security-policy"] == lite.POLICY
        assert form.headers["x-content-type-options"] == "nosniff" and form.headers["referrer-policy"] == "no-referrer"
        assert "<script" not in form.text and 'action="/login"' in form.text and 'type="password"' in form.text
        assert 'name="next" value="/lite"' in form.text and "llmtool_csrf" in form.headers["set-cookie"]
        assert "/lite/static/lite.css" in form.text
        # the Gradio page, once logged in, has the app's CSP
        assert post_login(browser, "ann", "pw-ann", "/lite").headers["location"] == "/lite"
        tool = browser.get("/")
        assert tool.status_code == 200 and tool.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_a_wrong_user_or_password_shows_the_form_again_without_saying_which(server: BackgroundServer) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as browser:
        answers = [post_login(browser, user, password) for user, password in
                   (("ann", "nope"), ("nobody", "pw-ann"), ("ann", ""), ("", ""))]
        for answer in answers:
            assert answer.status_code == 401 and "llmtool_session" not in answer.headers.get("set-cookie", "")
            assert "The user name or password is wrong" in answer.text
        assert answers[0].text.replace("ann", "") == answers[1].text.replace("nobody", "")  # the same page
        assert 'value="ann"' in answers[0].text and "nope" not in answers[0].text  # the password is never echoed
        assert browser.get("/lite").status_code == 303


def test_the_login_form_needs_its_csrf_token(server: BackgroundServer) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as browser:
        assert browser.post("/login", data={"username": "ann", "password": "pw-ann"}).status_code == 403
        token = form_token(browser.get("/login"))
        foreign = browser.post("/login", data={"csrf_token": token, "username": "ann", "password": "pw-ann"},
                               headers={"sec-fetch-site": "cross-site"})
        assert foreign.status_code == 403 and "llmtool_session" not in foreign.headers.get("set-cookie", "")


@pytest.mark.parametrize("target", ["//evil.com", "https://evil.com", "/\\evil.com", "\\\\evil.com", "/\t/evil.com",
                                    "javascript:alert(1)", "evil.com", "/login", "", "http:/evil.com", "/%0a/x\n"])
def test_next_only_ever_leads_to_a_path_of_ours(server: BackgroundServer, target: str) -> None:
    assert safe_next(target) == "/"
    with httpx.Client(base_url=server.url, timeout=10) as browser:
        token = form_token(browser.get("/login"))
        answer = browser.post("/login", data={"csrf_token": token, "username": "ann", "password": "pw-ann",
                                              "next": target})
        assert answer.status_code == 303 and answer.headers["location"] == "/"
        assert browser.get("/login", params={"next": target}).headers["location"] == "/"  # already logged in


def test_next_keeps_a_path_with_its_query() -> None:
    assert safe_next("/lite?template=classify") == "/lite?template=classify"
    assert safe_next("/lite/runs/abc") == "/lite/runs/abc"


# -- logged in ------------------------------------------------------------------------------------
def test_the_session_cookie_is_httponly_lax_signed_and_secure_behind_https(server: BackgroundServer) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as browser:
        answer = post_login(browser, "ann", "pw-ann", "/lite")
        assert answer.status_code == 303 and answer.headers["location"] == "/lite"
        cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("llmtool_session="))
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "path", "samesite", "max-age"} <= attributes and "secure" not in attributes
        assert "samesite=lax" in cookie.lower() and "path=/" in cookie.lower()
        value = answer.cookies["llmtool_session"]
        assert "pw-ann" not in value and "." in value  # token.signature
    with httpx.Client(base_url=server.url, timeout=10, headers={"x-forwarded-proto": "https"}) as behind_proxy:
        form = behind_proxy.get("/login")
        assert "secure" in form.headers["set-cookie"].lower()  # the CSRF cookie too (httpx keeps it off http)
        token = form_token(form)
        answer = behind_proxy.post("/login", data={"csrf_token": token, "username": "ann", "password": "pw-ann"},
                                   headers={"cookie": f"llmtool_csrf={token}"})
        cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("llmtool_session="))
        assert "secure" in cookie.lower()


def test_with_a_session_the_tool_lite_and_api_answer(server: BackgroundServer) -> None:
    cookies = {"llmtool_session": log_in(server.url, "ann", "pw-ann")}
    with httpx.Client(base_url=server.url, cookies=cookies, timeout=10) as ann:
        page = ann.get("/")
        assert page.status_code == 200 and "/logout" in page.text  # the Log out link is in the page
        assert "pw-ann" not in page.text and ann.cookies["llmtool_session"] not in page.text
        assert ann.get("/gradio_api/info").status_code == 200
        assert ann.get("/lite").status_code == 200
        assert ann.get("/api/runs").json()["runs"] == []
        started = ann.post("/api/runs", json={"prompt": "hi"}, headers={"origin": server.url})
        assert started.status_code == 202
        # a cookie alone does not let another site (or a same-site neighbour) change anything
        foreign = ann.post("/api/runs", json={"prompt": "hi"}, headers={"sec-fetch-site": "same-site"})
        assert foreign.status_code == 401
        assert ann.post("/api/runs", json={"prompt": "hi"}).status_code == 401  # no sign it comes from us
    with httpx.Client(base_url=server.url, auth=("bob", "pw-bob"), timeout=10) as script:
        own = script.post("/api/runs", json={"prompt": "hi"})
        assert own.status_code == 202  # HTTP Basic for scripts
        assert script.get(own.headers["location"]).status_code == 200
        assert script.get(started.headers["location"]).status_code == 404  # ann's run is not bob's
        assert script.get("/").status_code == 303  # Basic is for /api only


def test_a_tampered_or_foreign_cookie_is_refused(server: BackgroundServer) -> None:
    value = log_in(server.url, "ann", "pw-ann")
    token, signature = value.rsplit(".", 1)
    forged = [token[:-1] + ("A" if token[-1] != "A" else "B") + "." + signature,
              token + "." + signature[::-1], token, "x" * 5000, "ann"]
    for bad in forged:
        with httpx.Client(base_url=server.url, cookies={"llmtool_session": bad}, timeout=10) as browser:
            assert browser.get("/").status_code == 303, bad
            assert browser.get("/api/runs").status_code == 401
    with httpx.Client(base_url=server.url, cookies={"llmtool_session": value}, timeout=10) as browser:
        assert browser.get("/").status_code == 200


def test_logout_ends_the_session_here_and_in_another_process(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "shared.db")
    first, second = AppContext(settings), AppContext(settings)
    with BackgroundServer(create_app(context=first, auth=check)) as one, \
            BackgroundServer(create_app(context=second, auth=check)) as two:
        second.sessions.cache_seconds = 0.2  # the other process notices within its cache time
        value = log_in(one.url, "ann", "pw-ann")
        with httpx.Client(base_url=two.url, cookies={"llmtool_session": value}, timeout=10) as elsewhere:
            tool = elsewhere.get("/")
            assert tool.status_code == 200  # one secret key, one store: the same login
            assert first.secret_key and first.secret_key == second.secret_key and first.secret_key not in tool.text
            assert elsewhere.get("/api/runs").status_code == 200
        with httpx.Client(base_url=one.url, cookies={"llmtool_session": value}, timeout=10) as browser:
            confirm = browser.get("/logout")
            assert confirm.status_code == 200 and "ann" in confirm.text and 'action="/logout"' in confirm.text
            assert browser.post("/logout", data={}).status_code == 403  # CSRF
            out = browser.post("/logout", data={"csrf_token": form_token(confirm)})
            assert out.status_code == 303 and out.headers["location"] == "/login"
            assert 'llmtool_session=""' in out.headers["set-cookie"] or "max-age=0" in out.headers["set-cookie"].lower()
        time.sleep(0.3)
        for url in (one.url, two.url):  # the old cookie, kept by someone, no longer works anywhere
            with httpx.Client(base_url=url, cookies={"llmtool_session": value}, timeout=10) as stolen:
                assert stolen.get("/").status_code == 303
                assert stolen.get("/lite").status_code == 303
                assert stolen.get("/api/runs").status_code == 401
                assert stolen.get("/gradio_api/info").status_code == 401


def test_without_users_nothing_asks_for_a_login(tmp_path: Path) -> None:
    with BackgroundServer(create_app(settings_for(tmp_path / "runs.db"))) as open_app, \
            httpx.Client(base_url=open_app.url, timeout=10) as anyone:
        page = anyone.get("/")
        assert page.status_code == 200 and "/logout" not in page.text
        assert anyone.get("/lite").status_code == 200 and "Log out" not in anyone.get("/lite").text
        assert anyone.get("/api/runs").status_code == 200
        assert anyone.get("/login", params={"next": "/lite"}).headers["location"] == "/lite"


def test_the_login_needs_the_store(tmp_path: Path) -> None:
    context = AppContext(settings_for(tmp_path / "runs.db"))
    with BackgroundServer(create_app(context=context, auth=check)) as server, \
            httpx.Client(base_url=server.url, timeout=10) as browser:
        service = context.started_service()
        assert service is not None
        store, service.store = service.store, None  # runs (and so logins) are not kept
        try:
            answer = post_login(browser, "ann", "pw-ann")
            assert answer.status_code == 503 and "not possible right now" in answer.text
        finally:
            service.store = store


# -- sessions against the store, with a clock the tests move --------------------------------------
class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(store_url: str):  # type: ignore[no-untyped-def]
    opened = await open_store(store_url)
    yield opened
    await opened.aclose()


def sessions_on(store: Any, clock: Clock, idle: float = 3600.0, most: float = 86400.0) -> Sessions:
    return Sessions("k" * 43, lambda: store, idle_seconds=idle, max_seconds=most, clock=clock, cache_seconds=0)


async def test_a_session_ends_after_its_idle_time(store: Any) -> None:
    clock = Clock()
    sessions = sessions_on(store, clock, idle=3600)
    value = await sessions.create("ann")
    for _ in range(5):  # used every 50 minutes: never idle for an hour
        clock.now += 3000
        assert await sessions.user_of(value) == "ann"
    clock.now += 3600
    assert await sessions.user_of(value) is None
    assert await store.purge_sessions(clock.now, 3600) == 0  # already deleted


async def test_a_session_ends_at_its_absolute_lifetime_however_much_it_is_used(store: Any) -> None:
    clock = Clock()
    sessions = sessions_on(store, clock, idle=3600, most=4 * 3600)
    value = await sessions.create("ann")
    started = clock.now
    while clock.now + 1800 < started + 4 * 3600:
        clock.now += 1800
        assert await sessions.user_of(value) == "ann"
    clock.now = started + 4 * 3600
    assert await sessions.user_of(value) is None


async def test_last_use_is_written_at_most_once_a_minute_and_the_cache_spares_the_database(store: Any) -> None:
    clock = Clock()
    sessions = Sessions("k" * 43, lambda: store, idle_seconds=3600, max_seconds=86400, clock=clock, cache_seconds=60)
    value = await sessions.create("ann")
    calls = {"get_session": 0, "touch_session": 0}
    for name in calls:
        original = getattr(store, name)

        async def counted(*args: Any, _name: str = name, _original: Any = original) -> Any:
            calls[_name] += 1
            return await _original(*args)

        setattr(store, name, counted)
    for _ in range(50):
        assert await sessions.user_of(value) == "ann"
        clock.now += 1
    assert calls == {"get_session": 1, "touch_session": 0}  # one read, then the memory
    clock.now += TOUCH_EVERY
    assert await sessions.user_of(value) == "ann"
    assert calls["touch_session"] == 1
    record = await store.get_session(next(iter(sessions._cache)))
    assert isinstance(record, SessionRecord) and record.last_seen == clock.now


async def test_a_forged_value_is_refused_before_any_database_read() -> None:
    class NoStore:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"the store was asked ({name}) for a forged cookie")

    sessions = Sessions("k" * 43, lambda: NoStore(), idle_seconds=60, max_seconds=60)  # type: ignore[arg-type,return-value]
    other = Sessions("another key", lambda: None, idle_seconds=60, max_seconds=60)
    signed_elsewhere = other._signer.sign("a-token").decode()
    for forged in (signed_elsewhere, "a-token", "a-token.", "", None, "é.x"):
        assert await sessions.user_of(forged) is None


async def test_every_session_of_a_user_can_be_ended(store: Any) -> None:
    clock = Clock()
    sessions = sessions_on(store, clock)
    ann_one, ann_two, bob = [await sessions.create(u) for u in ("ann", "ann", "bob")]
    assert await sessions.end_all("ann") == 2
    assert [await sessions.user_of(v) for v in (ann_one, ann_two, bob)] == [None, None, "bob"]


async def test_a_websocket_without_a_session_is_closed_not_crashed() -> None:
    from llmtool.web.context import AppContext
    from llmtool.web.login import LoginGate

    reached: list[str] = []

    async def app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        reached.append(scope["type"])

    context = AppContext(load_settings(), auth=lambda user, password: False)
    context.secret_key = "k" * 32
    sent: list[dict] = []

    async def send(message) -> None:  # type: ignore[no-untyped-def]
        sent.append(message)

    scope = {"type": "websocket", "path": "/gradio_api/ws", "headers": [], "query_string": b""}
    await LoginGate(app, context)(scope, None, send)  # type: ignore[arg-type]
    assert sent == [{"type": "websocket.close", "code": 1008}] and reached == []
