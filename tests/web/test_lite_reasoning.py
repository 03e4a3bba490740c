"""Reasoning models on the no-JavaScript pages, through a real server with httpx as the browser: the
thoughts collapsed above the answer ("Thinking… (N s)" while the model thinks, "Thought for N s" after),
rendered inert, never inside the answer; the reasoning effort picked on the form and the follow-up box;
a refused effort or model said on the form with nothing lost; any PROVIDER:MODEL typed; cost unknown."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape

import httpx
import pytest

from llmtool.loopback import LoopbackServer, Scenario
from llmtool.web.app import create_app
from llmtool.web.context import AppContext
from llmtool.web.serve import BackgroundServer
from tests.web.support import check_again, make_settings, send_form, state, token

THINKER = "demo:thinker"


@pytest.fixture(scope="module")
def served(loopback: LoopbackServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    folder = tmp_path_factory.mktemp("lite-reasoning")
    (folder / "plan.md").write_text("---\nmodel: demo:thinker\nreasoning_effort: low\nvariables:\n  goal: {}\n---\n"
                                    "Plan {{ goal }}.\n")
    settings = make_settings(loopback, folder, prompts=folder, tokens_per_second=5_000, max_attempts=1, timeouts=None,
                             flush_interval=0.05)
    with BackgroundServer(create_app(context=AppContext(settings))) as server:
        assert httpx.get(f"{server.url}/lite", timeout=10).status_code == 200  # the providers' lists, cached
        yield server


def ask(http: httpx.Client, prompt: str, model: str = THINKER, effort: str = "minimal", **fields: str) -> str:
    return send_form(http, model=model, prompt=prompt, reasoning_effort=effort, **fields)


def between(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0]


def test_the_thoughts_show_collapsed_above_the_answer_never_inside_it(http: httpx.Client) -> None:
    location = ask(http, "Plan a picnic by the river", effort="low")  # a second of thinking: seen on the way
    thinking = check_again(http, location, lambda s: s.startswith("Thinking"))
    assert re.fullmatch(r"Thinking… \(\d+ s\)", state(thinking))
    assert "<title>Thinking… — llmtool</title>" in thinking.text
    assert re.search(r'<summary id="reasoning-summary">Thinking… \(\d+ s\)</summary>', thinking.text)

    done = check_again(http, location, lambda s: s.startswith("Done"))
    details = between(done.text, '<details class="reasoning" id="reasoning">', "</details>")
    assert re.search(r'<summary id="reasoning-summary">Thought for \d\.\d s</summary>', details)
    assert "open" not in done.text.split('<details class="reasoning" id="reasoning"', 1)[1].split(">", 1)[0]
    assert "<strong>Understanding the request.</strong>" in details  # Markdown, rendered by the server
    answer = between(done.text, '<div class="answer" id="answer">', "</div>")
    assert "About: Plan a picnic" in answer and "Understanding the request" not in answer
    assert done.text.index('id="reasoning"') < done.text.index('id="answer"')  # above the answer

    part = http.get(location + "/part").json()  # what lite.js swaps in at the end: the same
    assert part["thought"].startswith("Thought for") and '<details class="reasoning" id="reasoning">' in part["answer_html"]
    # The follow-up box keeps the effort of the question it follows.
    assert re.search(r'<option value="low" selected>Low</option>', done.text)


def test_the_thoughts_are_rendered_inert(http: httpx.Client) -> None:
    location = ask(http, "<script>alert(1)</script> <img src=x onerror=alert(2)> [x](javascript:alert(3))")
    done = check_again(http, location, lambda s: s.startswith("Done"))
    details = between(done.text, '<div class="reasoning-text" id="reasoning-text">', "</details>")
    assert "The user asks about" in details
    assert "<script" not in details and "<img" not in details and "href=\"javascript" not in details
    assert "&lt;script&gt;" in details


def test_effort_none_shows_no_thoughts(http: httpx.Client) -> None:
    done = check_again(http, ask(http, "Just answer", effort="none"), lambda s: s.startswith("Done"))
    assert 'id="reasoning"' not in done.text and "Thought for" not in done.text


def test_the_form_offers_the_efforts_and_the_providers_lists(http: httpx.Client) -> None:
    page = http.get("/lite")
    select = between(page.text, '<select id="reasoning_effort" name="reasoning_effort"', "</select>")
    values = re.findall(r'<option value="([^"]*)"', select)
    assert values == ["", "none", "minimal", "low", "medium", "high", "xhigh", "max"]
    assert '<option value="" selected>The model\'s default</option>' in select
    assert '<label for="reasoning_effort">Reasoning effort</label>' in page.text
    listed = re.findall(r'<option value="([^"]+)"></option>', between(page.text, '<datalist id="model-list">', "</datalist>"))
    assert THINKER in listed and "openai:gpt-4.1-mini" in listed  # the loopback server's live list
    template = http.get("/lite", params={"template": "plan"})
    assert "The template's (low)" in template.text and 'value="demo:thinker"' in template.text


@pytest.mark.parametrize(("fields", "field", "message"), [
    ({"model": "demo:assistant", "reasoning_effort": "high"}, "reasoning_effort",
     "demo:assistant is not a reasoning model: leave the reasoning effort unset."),
    ({"model": "demo:thinker", "reasoning_effort": "extreme"}, "reasoning_effort",
     "Pick a reasoning effort from the list (or the model's default)."),
    ({"model": "nowhere:model", "reasoning_effort": "low"}, "model", "Unknown provider 'nowhere'"),
    ({"model": "anthropic:claude-next", "reasoning_effort": "low"}, "model", "anthropic:claude-next needs ANTHROPIC_API_KEY"),
])
def test_a_refused_choice_is_said_on_the_form_and_nothing_is_lost(http: httpx.Client, fields, field, message) -> None:
    page = http.post("/lite/runs", data={"csrf_token": token(http), "prompt": "Keep this text", **fields})
    assert page.status_code == 422
    text = unescape(page.text)
    assert f'<p class="field-error" id="{field}-error"><span class="visually-hidden">Error:</span> {message}' in text
    assert f'<li><a href="#{field}">{message}' in text  # the error summary links to the field
    assert ">Keep this text</textarea>" in page.text and f'value="{fields["model"]}"' in text
    if fields["reasoning_effort"] in ("high", "low"):
        assert f'<option value="{fields["reasoning_effort"]}" selected>' in page.text


def test_a_refused_effort_in_the_follow_up_box_keeps_the_question(http: httpx.Client) -> None:
    location = ask(http, "First question", effort="minimal")
    done = check_again(http, location, lambda s: s.startswith("Done"))
    conversation = re.search(r'name="conversation_id" value="([^"]+)"', done.text).group(1)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', done.text).group(1)
    form = {"csrf_token": csrf, "conversation_id": conversation, "after": location.rsplit("/", 1)[1],
            "prompt": "And the next one?", "model": "demo:assistant", "reasoning_effort": "minimal"}
    refused = http.post("/lite/runs", data=form)
    assert refused.status_code == 422
    assert "demo:assistant is not a reasoning model" in unescape(refused.text)
    assert ">And the next one?</textarea>" in refused.text and '<option value="minimal" selected>' in refused.text
    sent = http.post("/lite/runs", data={**form, "model": THINKER})
    assert sent.status_code == 303
    second = check_again(http, sent.headers["location"], lambda s: s.startswith("Done"))
    earlier = between(second.text, '<section class="turn earlier"', "</section>")
    assert "Thought for" in earlier and "Understanding the request" in earlier  # the earlier turn's thoughts too


def test_a_template_run_takes_the_effort_picked(http: httpx.Client) -> None:
    page = http.post("/lite/runs", data={"csrf_token": token(http, "/lite?template=plan"), "template": "plan",
                                           "model": THINKER, "var_goal": "a picnic", "reasoning_effort": "minimal"})
    assert page.status_code == 303, page.text
    done = check_again(http, page.headers["location"], lambda s: s.startswith("Done"))
    thought = re.search(r"Thought for (\d\.\d) s", done.text)
    assert thought and float(thought.group(1)) < 0.9  # minimal (0.6 s), not the template's low (1 s)


def test_any_model_name_of_a_configured_provider_runs_with_its_cost_unknown(http: httpx.Client,
                                                                          loopback: LoopbackServer) -> None:
    token(http)
    loopback.reset()
    loopback.enqueue(Scenario(text="Fresh model here.", tokens_per_second=2_000))
    answer = http.post("/lite/runs", data={"csrf_token": token(http), "model": "openai:gpt-9-preview",
                                             "prompt": "Hi", "reasoning_effort": ""})
    assert answer.status_code == 303, answer.text
    done = check_again(http, answer.headers["location"], lambda s: not s.startswith(("Waiting", "Writing")))
    assert re.fullmatch(r"Done in \d+\.\d s · \d+ tokens · cost unknown", state(done)), state(done)
    assert "$0.0000" not in done.text
