"""The login in Debian's Chromium: the form with JavaScript off (→ 303 → the tool), a wrong password,
then the Gradio tool with JavaScript on, its Log out link and the confirmation. Screenshots go to
test-output/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from llmtool.settings import load_settings
from llmtool.web.app import create_app
from llmtool.web.serve import BackgroundServer
from tests.ui.browser_support import OUTPUT
from tests.ui.browser_support import pytestmark as browser_marks

pytestmark = browser_marks
USERS = {"ann": "pw-ann"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    settings = load_settings(
        default_model="demo:assistant",
        database_url=f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('login-browser') / 'runs.db'}",
        prompts_dir=str(tmp_path_factory.mktemp("prompts")),
    )
    with BackgroundServer(create_app(settings, auth=lambda user, password: USERS.get(user) == password)) as server:
        yield server


@pytest.fixture
def contexts(browser) -> Iterator[list]:
    made: list = []
    yield made
    for context in made:
        context.close()


def open_page(browser, contexts: list, **options):  # type: ignore[no-untyped-def]
    contexts.append(browser.new_context(**options))
    page = contexts[-1].new_page()
    page.set_default_timeout(20_000)
    return page


def shot(page, name: str) -> Path:
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_log_in_without_javascript_then_use_the_tool_and_log_out(served: BackgroundServer, browser, contexts) -> None:
    plain = open_page(browser, contexts, java_script_enabled=False)
    plain.goto(f"{served.url}/")
    assert plain.url == f"{served.url}/login?next=%2F"
    assert plain.get_by_role("heading", name="Log in").is_visible()
    shot(plain, "login-form")
    plain.get_by_label("User name").fill("ann")
    plain.get_by_label("Password").fill("pw-ann")
    with plain.expect_navigation() as landed:
        plain.keyboard.press("Enter")  # the form, submitted by keyboard, no script
    assert landed.value is not None and landed.value.status == 200
    assert plain.url == f"{served.url}/"
    cookies = {c["name"]: c for c in plain.context.cookies()}
    session = cookies["llmtool_session"]
    assert session["httpOnly"] and session["sameSite"] == "Lax" and session["path"] == "/"

    # The same browser's login, JavaScript on: the Gradio tool loads and knows who is there.
    page = open_page(browser, contexts, storage_state=plain.context.storage_state())
    page.goto(f"{served.url}/")
    page.locator("textarea").first.wait_for(state="visible")
    logout = page.locator('a#logout[href="/logout"]')
    logout.wait_for(state="visible")
    shot(page, "login-tool")
    assert logout.get_attribute("target") in (None, "_self")
    logout.click()
    page.wait_for_url(f"{served.url}/logout")
    assert "ann" in page.inner_text("main")
    page.locator("main").get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{served.url}/login")
    page.goto(f"{served.url}/")
    assert page.url == f"{served.url}/login?next=%2F"  # the session is gone
    plain.goto(f"{served.url}/lite")  # the first context held the same session: it is gone too
    assert plain.url == f"{served.url}/login?next=%2Flite"


def test_a_wrong_password_says_so_without_javascript(served: BackgroundServer, browser, contexts) -> None:
    plain = open_page(browser, contexts, java_script_enabled=False)
    plain.goto(f"{served.url}/lite")
    assert plain.url == f"{served.url}/login?next=%2Flite"
    plain.get_by_label("User name").fill("ann")
    plain.get_by_label("Password").fill("wrong")
    plain.get_by_role("button", name="Log in").click()
    assert plain.locator("[role=alert]").inner_text().count("The user name or password is wrong") == 1
    assert plain.get_by_label("User name").input_value() == "ann" and plain.get_by_label("Password").input_value() == ""
    shot(plain, "login-wrong")
    plain.get_by_label("Password").fill("pw-ann")
    plain.get_by_role("button", name="Log in").click()
    assert plain.url == f"{served.url}/lite"  # back where the browser was going
    assert plain.get_by_role("button", name="Log out").is_visible()  # /lite's header has a Log out button
