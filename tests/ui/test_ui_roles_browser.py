"""The page each role gets, in Debian's Chromium through the real app: a partner's pickers list only
its templates, it has no prompt box but a sentence saying why, and a line of what it spent that moves
after a run; an admin has the Usage tab with every user's rows, a member has not."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from llmtool.web.serve import BackgroundServer
from tests.helpers import log_in, session_client
from tests.ui.browser_support import OUTPUT
from tests.ui.browser_support import pytestmark as browser_marks
from tests.ui.roles_support import ALLOWED, HIDDEN, PEOPLE, served

pytestmark = browser_marks
SPEND = re.compile(r"^Today \$(\d+\.\d\d) of \$5\.00 · this month \$(\d+\.\d\d) of \$50\.00$")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    with served(tmp_path_factory.mktemp("roles-browser")) as running:
        yield running


@pytest.fixture
def page_of(browser, server: BackgroundServer) -> Iterator:
    """A logged-in user's page on the tool, once the page load fitted it (the spend line, or the
    Usage tab's fit, has been answered)."""
    contexts: list = []

    def open_(user: str):  # type: ignore[no-untyped-def]
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        context.add_cookies([{"name": "llmtool_session", "value": log_in(server.url, user, PEOPLE[user]),
                              "url": server.url}])
        page = context.new_page()
        page.set_default_timeout(15_000)
        with page.expect_response(lambda r: "/gradio_api/run/predict" in r.url or "/run/predict" in r.url):
            page.goto(server.url)
        page.wait_for_selector("#chat")
        return page

    yield open_
    for context in contexts:
        context.close()


def options(page, elem_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    page.click(f"#{elem_id} input")
    listed = page.locator("ul[role=listbox] li").all_inner_texts()
    page.keyboard.press("Escape")
    return [text.replace("✓", "").strip() for text in listed]  # the picked one is ticked


def spend(page) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    page.wait_for_function("() => /^Today /.test(document.querySelector('#spend')?.innerText ?? '')")
    found = SPEND.match(page.inner_text("#spend").strip())
    assert found, page.inner_text("#spend")
    return float(found.group(1)), float(found.group(2))


def test_a_partner_is_offered_only_its_templates_and_no_prompt_box(page_of) -> None:
    page = page_of("pat")
    page.wait_for_selector("#templates-only", state="visible")
    assert "runs templates only" in page.inner_text("#templates-only")
    assert not page.is_visible("#prompt textarea") and not page.is_visible("#send")
    page.wait_for_function("() => document.querySelector('#template input')?.value === 'trip'")
    assert options(page, "template") == ALLOWED
    page.wait_for_selector("#run-template", state="visible")
    before = spend(page)
    assert before == (0.0, 0.0)
    page.locator("#var-city textarea").fill("Oslo")
    page.click("#run-template")
    page.wait_for_function("() => document.querySelector('#run-status')?.innerText.startsWith('Done')")
    page.wait_for_function("() => !/^Today \\$0\\.00 /.test(document.querySelector('#spend')?.innerText ?? '')")
    day, month = spend(page)
    assert day > 0 and month == day  # a cent a token
    assert not page.get_by_role("tab", name="Usage").is_visible()

    page.get_by_role("tab", name="Compare").click()
    assert options(page, "compare-template-1") == ALLOWED
    page.get_by_role("tab", name="Evaluate").click()
    assert options(page, "eval-template") == ALLOWED
    assert not page.is_visible("#eval-upload")
    page.get_by_role("tab", name="History").click()
    assert HIDDEN not in options(page, "history-template")
    OUTPUT.mkdir(exist_ok=True)
    page.get_by_role("tab", name="Chat").click()
    page.screenshot(path=str(OUTPUT / "roles-partner.png"), full_page=True)


def test_an_admin_sees_every_users_usage_and_a_member_no_usage_tab(page_of, server: BackgroundServer) -> None:
    for user, call in (("pat", lambda c: c.predict("trip", {"city": "Rome"}, api_name="/run_template")),
                       ("mia", lambda c: c.predict("hello from mia", api_name="/chat"))):
        client = session_client(server.url, user, PEOPLE[user])
        call(client)
        client.close()

    member = page_of("mia")
    member.wait_for_selector("#prompt textarea", state="visible")
    assert HIDDEN in options(member, "template")
    assert not member.get_by_role("tab", name="Usage").is_visible()
    assert not member.is_visible("#spend")  # a member has no budget

    admin = page_of("root")
    admin.get_by_role("tab", name="Usage").click()
    admin.wait_for_function("() => /\\bpat\\b/.test(document.querySelector('#usage-table')?.innerText ?? '')")
    table = admin.inner_text("#usage-table")
    assert re.search(r"\bmia\b", table) and re.search(r"\bpat\b", table)
    assert "**mia**" not in admin.inner_text("#usage-summary") and "mia" in admin.inner_text("#usage-summary")
    admin.screenshot(path=str(OUTPUT / "roles-usage.png"), full_page=True)
