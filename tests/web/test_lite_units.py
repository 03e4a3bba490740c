"""The /lite pages' pure parts: state wording, estimates, Markdown sanitizing, CSRF checks."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from llmtool.events import Metrics, Retrying
from llmtool.web import csrf
from llmtool.web.lite_words import estimate_line, seconds, state_line, thinking_line, typical_time, waited
from llmtool.web.markdown import render_markdown
from llmtool.web.run_status import RunError, RunStatusBody, links


def status(state: str = "running", text: str = "", elapsed: float = 4.2, metrics: Metrics | None = None,
           error: RunError | None = None) -> RunStatusBody:
    return RunStatusBody(id="r1", status=state, model="demo:assistant", created_at=0, elapsed_s=elapsed, text=text,
                         metrics=metrics, error=error, events=3, links=links("r1"))


@pytest.mark.parametrize(("body", "expected"), [
    (status(), "Waiting for the first token — 4 s"),
    (status(text="Hel", elapsed=12.7), "Writing… — 12 s"),
    (status("completed", "Hi", metrics=Metrics(total_time=3.21, output_tokens=412, cost_usd=0.0031)),
     "Done in 3.2 s · 412 tokens · $0.0031"),
    (status("completed", "Hi", metrics=Metrics(total_time=14, output_tokens=1, usage_estimated=True)),
     "Done in 14 s · ~1 token · cost unknown"),
    (status("completed", "Hi", metrics=Metrics(total_time=1, output_tokens=5, cost_usd=0.0)), "Done in 1.0 s · 5 tokens · no cost"),
    (status("stopped", "", metrics=Metrics(total_time=2.0)), "Stopped after 2.0 s"),
    (status("stopped", "part", metrics=Metrics(total_time=2.0)), "Stopped after 2.0 s · the partial answer is kept"),
    (status("failed", error=RunError(kind="auth", message="the provider refused the key sk-123")),
     "Failed: the provider refused the key ***"),
    (status("interrupted", "part", error=RunError(kind="interrupted", message="the server restarted")),
     "Interrupted: the server restarted · the partial answer is kept"),
])
def test_state_line(body: RunStatusBody, expected: str) -> None:
    assert state_line(body, redact=lambda text: text.replace("sk-123", "***")) == expected


def test_state_line_while_retrying_and_in_buffer_mode() -> None:
    retry = Retrying(attempt=2, max_attempts=3, delay=1.0, error_kind="rate_limited", reason="rate limited (HTTP 429)")
    assert state_line(status(), retry=retry) == "rate limited (HTTP 429) — trying again (attempt 2 of 3) — 4 s"
    assert state_line(status(), buffered=True).startswith("Writing and checking the answer")


@pytest.mark.parametrize(("value", "words"), [(3.21, "3.2 s"), (12.4, "12 s"), (125, "2 min 5 s")])
def test_seconds(value: float, words: str) -> None:
    assert seconds(value) == words


def test_waited_counts_whole_seconds() -> None:
    assert (waited(4.9), waited(130)) == ("4 s", "2 min 10 s")


def test_estimates_need_three_completed_runs_and_say_what_is_left() -> None:
    assert typical_time([3.0, 5.0]) is None
    assert typical_time([3.0, 5.0, 40.0]) == 5.0
    assert estimate_line(None, 3) is None
    assert estimate_line(8.4, 3) == "Answers from this model usually take about 8.4 s: about 5 s left."
    assert estimate_line(8.4, 8) == "Answers from this model usually take about 8.4 s: it should be done in a moment."
    assert estimate_line(8.4, 20) == "Answers from this model usually take about 8.4 s; this one is taking longer than usual."


@pytest.mark.parametrize(("markdown", "present", "absent"), [
    ("**bold** and `code`", ["<strong>bold</strong>", "<code>code</code>"], []),
    ("<script>alert(1)</script>", ["&lt;script&gt;"], ["<script"]),
    ("<img src=x onerror=alert(1)>", ["&lt;img"], ["<img"]),
    ("![secret](https://evil.example/?q=key)", ['<span class="image">[image: secret]</span>'], ["evil.example", "<img"]),
    ("[x](javascript:alert(1))", [], ["<a", 'href="javascript']),
    ("[x](https://example.org)", ['<a href="https://example.org" rel="noopener noreferrer nofollow">x</a>'], []),
    ("# Title", ["<h3>Title</h3>"], ["<h1>"]),
    ("| a |\n|---|\n| 1 |", ["<table>", "<td>1</td>"], ["style="]),
])
def test_markdown_is_rendered_and_sanitized(markdown: str, present: list[str], absent: list[str]) -> None:
    html = render_markdown(markdown)
    for fragment in present:
        assert fragment in html
    for fragment in absent:
        assert fragment not in html


def request(headers: dict[str, str], cookie: str | None = None) -> Request:
    raw = [(k.encode(), v.encode()) for k, v in {"host": "llm.example:8080", **headers}.items()]
    if cookie is not None:
        raw.append((b"cookie", f"{csrf.COOKIE}={cookie}".encode()))
    return Request({"type": "http", "method": "POST", "path": "/lite/runs", "headers": raw, "scheme": "http",
                    "server": ("llm.example", 8080), "query_string": b""})


GOOD = "a" * 43


@pytest.mark.parametrize(("headers", "cookie", "field", "refused"), [
    ({}, GOOD, GOOD, None),
    ({"origin": "http://llm.example:8080", "sec-fetch-site": "same-origin"}, GOOD, GOOD, None),
    ({"origin": "null"}, GOOD, GOOD, None),
    ({"x-forwarded-host": "public.example", "origin": "https://public.example"}, GOOD, GOOD, None),
    ({}, None, GOOD, csrf.EXPIRED),
    ({}, GOOD, None, csrf.EXPIRED),
    ({}, GOOD, "b" * 43, csrf.EXPIRED),
    ({}, "short", "short", csrf.EXPIRED),
    ({"origin": "https://evil.example"}, GOOD, GOOD, csrf.FOREIGN),
    ({"referer": "http://evil.example/x"}, GOOD, GOOD, csrf.FOREIGN),
    ({"sec-fetch-site": "cross-site"}, GOOD, GOOD, csrf.FOREIGN),
    ({"sec-fetch-site": "same-site"}, GOOD, GOOD, csrf.FOREIGN),
])
def test_csrf_check(headers: dict[str, str], cookie: str | None, field: str | None, refused: str | None) -> None:
    form = {csrf.FIELD: field} if field is not None else {}
    assert csrf.check(request(headers, cookie), form) == refused


def test_csrf_token_is_reused_from_the_cookie_or_made_once() -> None:
    assert csrf.token(request({}, GOOD)) == GOOD
    fresh = request({})
    made = csrf.token(fresh)
    assert len(made) >= 40 and csrf.token(fresh) == made


def thinking(state: str = "running", text: str = "", reasoning: str = "", thinking_s: float | None = None,
             metrics: Metrics | None = None) -> RunStatusBody:
    return status(state, text, metrics=metrics).model_copy(update={"reasoning": reasoning, "thinking_s": thinking_s})


@pytest.mark.parametrize(("body", "state_words", "summary"), [
    (thinking(reasoning="Hm", thinking_s=12.4), "Thinking… (12 s)", "Thinking… (12 s)"),
    (thinking(thinking_s=3.0), "Thinking… (3 s)", "Thinking… (3 s)"),  # silently: no thoughts shown yet
    (thinking(reasoning="Hm"), "Thinking…", "Thinking…"),  # a buffered run: how long is not known yet
    (thinking(text="Hel", reasoning="Hm", thinking_s=14.2), "Writing… — 4 s", "Thought for 14 s"),
    (thinking("completed", "Hi", "Hm", 0.6, Metrics(total_time=1.2, output_tokens=9, cost_usd=0.0)),
     "Done in 1.2 s · 9 tokens · no cost", "Thought for 0.6 s"),
    (thinking("completed", "Hi", "Hm", None, Metrics(total_time=1.2)), "Done in 1.2 s · cost unknown",
     "The model's thoughts"),
    (thinking("stopped", "", "Hm", 2.0, Metrics(total_time=2.0)), "Stopped after 2.0 s", "Thought for 2.0 s"),
    (thinking(text="Hel"), "Writing… — 4 s", None),  # not a reasoning model
])
def test_the_words_for_a_thinking_model(body: RunStatusBody, state_words: str, summary: str | None) -> None:
    assert state_line(body) == state_words
    assert thinking_line(body) == summary

