"""A reasoning model's run on /lite in Debian's Chromium: with JavaScript on, the thoughts grow live in the
collapsed box above the answer (never in the answer), which says "Thinking…" then "Thought for N s";
with JavaScript off, the box opens by keyboard like any <details>. Screenshots go to test-output/."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from llmtool.web.app import create_app
from llmtool.web.context import AppContext
from llmtool.web.serve import BackgroundServer
from tests.ui.browser_support import pytestmark as browser_marks
from tests.web.support import make_settings
from tests.web.test_lite_browser import DESKTOP, shot, state, until

pytestmark = browser_marks


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    settings = make_settings(None, tmp_path_factory.mktemp("lite-thinking"), prompts=tmp_path_factory.mktemp("prompts"),
                             first_token_delay=0.2, tokens_per_second=120, timeouts=None)
    with BackgroundServer(create_app(context=AppContext(settings))) as server:
        yield server


def ask_thinker(page, url: str, effort: str) -> None:
    page.goto(f"{url}/lite")
    page.fill("#model", "demo:thinker")
    page.select_option("#reasoning_effort", effort)
    page.fill("#prompt", "Plan a picnic by the river")
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(re.compile(r"/lite/runs/[0-9a-f]{12}$"))


def test_with_javascript_the_thoughts_grow_in_their_box_not_in_the_answer(served: BackgroundServer,
                                                                          open_page) -> None:
    page = open_page(viewport=DESKTOP)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    ask_thinker(page, served.url, "low")  # about a second of thinking
    page.wait_for_selector("#run[data-live=true]")
    # (text_content: a collapsed box's text is not rendered, so inner_text would not see it)
    until(lambda: len(page.text_content("#reasoning-text") or "") > 40, what="thoughts in the box", page=page)
    summary = page.inner_text("#reasoning-summary")
    assert summary.startswith("Thinking…"), summary
    assert page.inner_text("#answer").strip() == ""  # the thoughts are not the answer
    assert page.get_attribute("#reasoning", "open") is None  # collapsed…
    page.click("#reasoning-summary")  # …until the reader opens it
    assert page.get_attribute("#reasoning", "open") is not None
    assert "Understanding the request" in page.inner_text("#reasoning-text")
    shot(page, "lite-js-thinking")

    until(lambda: len(page.inner_text("#answer")) > 20, what="the answer", page=page)
    assert "Understanding the request" not in page.inner_text("#answer")
    until(lambda: page.inner_text("#reasoning-summary").startswith("Thought for"), what="the summary", page=page)
    until(lambda: state(page).startswith("Done"), 30, "the end", page)
    assert re.fullmatch(r"Thought for \d\.\d s", page.inner_text("#reasoning-summary"))
    assert page.get_attribute("#reasoning", "open") is not None  # the server's rendering kept it open
    assert page.locator("#reasoning-text strong").count() > 0  # and rendered its Markdown
    assert "Understanding the request" not in page.inner_text("#answer")
    assert errors == []
    shot(page, "lite-js-thought")


def test_without_javascript_the_thoughts_open_by_keyboard(served: BackgroundServer, open_page) -> None:
    page = open_page(viewport=DESKTOP, java_script_enabled=False)
    ask_thinker(page, served.url, "minimal")
    deadline_state = ""
    for _ in range(60):
        deadline_state = state(page)
        if deadline_state.startswith("Done"):
            break
        page.wait_for_timeout(200)
        page.get_by_role("button", name="Check again").click()
        page.wait_for_load_state()
    assert deadline_state.startswith("Done"), deadline_state
    box = page.locator("#reasoning")
    assert box.is_visible() and box.get_attribute("open") is None
    assert not page.locator("#reasoning-text").is_visible()  # collapsed: only the summary shows
    page.focus("#reasoning-summary")
    page.keyboard.press("Enter")
    assert box.get_attribute("open") is not None and page.locator("#reasoning-text").is_visible()
    assert "Understanding the request" in page.inner_text("#reasoning-text")
    assert "Understanding the request" not in page.inner_text("#answer")
    assert page.locator("#reasoning_effort option[selected]").get_attribute("value") == "minimal"  # the follow-up's
    shot(page, "lite-nojs-thought")
