"""The /lite pages in Debian's Chromium: with JavaScript off (form → 303 → status page → Check again
until done → Stop → next question, by keyboard), and with JavaScript on (the text grows live, no
reload). Screenshots (desktop and 320 px wide) go to test-output/."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llmtool.web.app import create_app
from llmtool.web.context import AppContext
from llmtool.web.serve import BackgroundServer
from tests.ui.browser_support import OUTPUT
from tests.ui.browser_support import pytestmark as browser_marks
from tests.web.support import make_settings

pytestmark = browser_marks
DESKTOP = {"width": 1280, "height": 900}
NARROW = {"width": 320, "height": 800}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    settings = make_settings(None, tmp_path_factory.mktemp("lite-browser"), prompts=tmp_path_factory.mktemp("prompts"),
                             first_token_delay=0.8, tokens_per_second=20,  # slow enough to watch it being written
                             timeouts=None)
    with BackgroundServer(create_app(context=AppContext(settings))) as server:
        yield server


def shot(page, name: str) -> Path:
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def state(page) -> str:
    return page.inner_text("#state").strip()


def until(condition, timeout: float = 15, what: str = "", page=None) -> None:
    """Poll from Python: the page's CSP forbids the eval that Playwright's wait_for_function needs.
    With `page`, wait through Playwright so that its event and route handlers run meanwhile."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        if page is not None:
            page.wait_for_timeout(50)
        else:
            time.sleep(0.05)


def answer_length(page) -> int:
    return len(page.inner_text("#answer"))


def press_and_load(page, key: str) -> None:
    """Press a key on the focused control and wait for the page it loads."""
    with page.expect_navigation():
        page.keyboard.press(key)


def tab_to(page, name: str, limit: int = 30) -> None:
    """Press Tab until the focused element is the control with this accessible name (by keyboard only)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.locator("*:focus")
        if focused.count() and name in (focused.get_attribute("aria-label") or focused.inner_text()
                                         or _label_of(page, focused)):
            return
    raise AssertionError(f"no control named {name!r} within {limit} tabs")


def _label_of(page, element) -> str:
    element_id = element.get_attribute("id")
    if not element_id:
        return ""
    label = page.locator(f"label[for='{element_id}']")
    return label.inner_text() if label.count() else ""


def test_without_javascript_ask_check_again_stop_and_follow_up_by_keyboard(served: BackgroundServer,
                                                                           open_page) -> None:
    page = open_page(java_script_enabled=False, viewport=DESKTOP)
    statuses: list[tuple[str, str, int]] = []
    page.on("response", lambda r: statuses.append((r.request.method, r.url, r.status)))
    page.goto(f"{served.url}/lite")
    assert page.locator("meta[http-equiv]").count() == 0
    tab_to(page, "Your question")
    page.keyboard.type("Explain streaming in two lines")
    tab_to(page, "Send")
    press_and_load(page, "Enter")
    page.wait_for_url(re.compile(r"/lite/runs/[0-9a-f]{12}$"))
    assert ("POST", f"{served.url}/lite/runs", 303) in statuses
    run_url = page.url
    assert page.locator("[role=status][aria-live=polite]").count() == 1
    assert re.fullmatch(r"(Waiting for the first token|Writing…) — \d+ s", state(page))
    assert page.get_by_role("button", name="Check again").is_visible()
    shot(page, "lite-nojs-waiting")

    deadline = time.monotonic() + 30
    seen = {state(page).split(" — ")[0]}
    while not state(page).startswith("Done"):
        assert time.monotonic() < deadline, state(page)
        time.sleep(1)
        tab_to(page, "Check again")
        press_and_load(page, "Enter")
        assert page.url.split("?")[0] == run_url
        seen.add(state(page).split(" — ")[0])
        if state(page).startswith("Writing"):
            shot(page, "lite-nojs-writing")
    assert "Writing…" in seen
    assert re.fullmatch(r"Done in \d+(\.\d)? s · ~?\d+ tokens?( · \$\d+\.\d{4}| · no cost)?", state(page)), state(page)
    assert page.locator("#answer strong").count() > 0  # Markdown, rendered by the server
    assert page.get_by_role("button", name="Check again").count() == 0
    shot(page, "lite-nojs-done")

    tab_to(page, "Your next question")
    page.keyboard.type("And in one word?")
    tab_to(page, "Send")
    press_and_load(page, "Enter")
    page.wait_for_url(re.compile(r"/lite/runs/[0-9a-f]{12}$"))
    assert page.url != run_url
    assert page.locator(".turn.earlier").count() == 1  # the conversation so far
    assert "Explain streaming in two lines" in page.inner_text(".turn.earlier")
    tab_to(page, "Stop")
    press_and_load(page, "Enter")
    assert state(page).startswith("Stopped after"), state(page)
    assert page.get_by_role("button", name="Send").is_visible()  # ended: the box for the next question
    shot(page, "lite-nojs-stopped-followup")

    narrow = open_page(java_script_enabled=False, viewport=NARROW)
    narrow.goto(page.url)
    shot(narrow, "lite-nojs-320")
    narrow.goto(f"{served.url}/lite")
    shot(narrow, "lite-form-320")


def test_with_javascript_the_text_grows_live_without_a_reload(served: BackgroundServer, open_page) -> None:
    page = open_page(viewport=DESKTOP)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(f"{served.url}/lite")
    page.fill("#prompt", "Tell me about live updates")
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(re.compile(r"/lite/runs/[0-9a-f]{12}$"))
    page.wait_for_selector("#run[data-live=true]")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    assert not page.get_by_role("button", name="Check again").is_visible()  # hidden: the page updates itself
    until(lambda: answer_length(page) > 20, what="the first text")
    first = answer_length(page)
    until(lambda: answer_length(page) > first + 20, what="more text")
    assert state(page) == "Writing…"
    assert not page.locator("#waited").is_hidden()
    shot(page, "lite-js-writing")
    until(lambda: state(page).startswith("Done"), 30, "the end")
    assert navigations == []  # no reload: the same document all along
    assert page.locator("#answer strong").count() > 0  # the server's sanitized rendering replaced the live text
    assert page.get_by_role("button", name="Send").is_visible()
    assert page.locator("[role=status][aria-live=polite]").count() == 1
    assert errors == []  # nothing blocked by the CSP, no script error
    shot(page, "lite-js-done")

    narrow = open_page(viewport=NARROW, bypass_csp=True)  # only to measure the layout with evaluate
    narrow.goto(page.url)
    assert narrow.evaluate("document.documentElement.scrollWidth") <= NARROW["width"]
    shot(narrow, "lite-js-320")


def first_frames(url: str, count: int) -> str:
    """The first `count` frames of an event stream, read from the server, as the raw text."""
    frames: list[str] = []
    lines: list[str] = []
    with httpx.stream("GET", url, timeout=10) as response:
        for line in response.iter_lines():
            if line:
                lines.append(line)
                continue
            if lines and not all(x.startswith(":") for x in lines):
                frames.append("\n".join(lines) + "\n\n")
            lines = []
            if len(frames) >= count:
                break
    return "".join(frames)


def test_with_javascript_a_lost_connection_resumes_from_the_last_event(served: BackgroundServer, open_page) -> None:
    page = open_page(viewport=DESKTOP)
    streams: list[dict[str, str]] = []

    def cut_the_first_stream(route) -> None:
        """The first connection ends after 8 events, as if the network dropped; later ones go through."""
        streams.append({**route.request.all_headers(), "url": route.request.url})
        if len(streams) > 1:
            route.continue_()
            return
        body = "retry: 200\n\n" + first_frames(route.request.url, 8)
        route.fulfill(status=200, headers={"content-type": "text/event-stream", "cache-control": "no-cache"}, body=body)

    page.route(re.compile(r"/api/runs/[0-9a-f]+/events"), cut_the_first_stream)
    page.goto(f"{served.url}/lite")
    page.fill("#prompt", "Resume me")
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(re.compile(r"/lite/runs/[0-9a-f]{12}$"))
    until(lambda: len(streams) >= 2, 15, "a reconnect", page)
    until(lambda: len(page.inner_text("#answer .live")) > 200, 20, "text after the reconnect", page)
    live = page.inner_text("#answer .live")
    assert live.count("About: Resume me") == 1  # (Playwright does not list the Last-Event-ID header it sent)
    run_id = page.url.rsplit("/", 1)[1]
    until(lambda: state(page).startswith("Done"), 40, "the end", page)
    final = httpx.get(f"{served.url}/api/runs/{run_id}", timeout=10).json()["text"]
    assert final.startswith(live.rstrip())  # nothing lost, nothing twice


def test_check_again_page_shows_no_refresh_and_one_live_region(served: BackgroundServer, open_page) -> None:
    page = open_page(java_script_enabled=False, viewport=DESKTOP)
    page.goto(f"{served.url}/lite")
    html = page.content().lower()
    assert "http-equiv" not in html
    assert page.locator("label[for=prompt]").count() == 1 and page.locator("label[for=model]").count() == 1
