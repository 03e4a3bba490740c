"""The History tab in Debian's Chromium: filter, open a run, read its answer; a prompt's HTML stays text."""

from __future__ import annotations

from pathlib import Path

from tests.ui.browser_support import CHROMIUM_ARGS, OUTPUT, pytestmark  # noqa: F401  (marks)
from tests.ui.test_ui_history import clients, serve  # noqa: F401  (fixtures)

HOSTILE = '<img src="x" onerror="window.__owned=1"> where is the walrus'


def test_filter_open_and_read_the_answer(serve, browser) -> None:  # noqa: F811
    app = serve(page_size=10)
    for i in range(4):
        app.make_run(f"an ordinary prompt {i}", model="demo:assistant")
    walrus = app.make_run(HOSTILE, model="demo:echo")
    app.make_run("another ordinary prompt", model="demo:echo")

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(app.url)
        page.wait_for_function("() => document.querySelector('#history-page')?.innerText.includes('of 6')")

        page.fill("#history-search textarea, #history-search input", "walrus")
        page.press("#history-search textarea, #history-search input", "Enter")
        page.wait_for_function("() => document.querySelector('#history-page')?.innerText.includes('runs 1–1 of 1')")
        table = page.inner_text("#history-table")
        assert "where is the walrus" in table and '<img src="x"' in table  # shown as text
        assert page.locator("#history-table img").count() == 0

        page.click('#history-table [data-testid="cell-0-5"]')  # the first row's prompt
        page.wait_for_function(
            "() => document.querySelector('#history-answer')?.innerText.includes('where is the walrus')")
        assert walrus.id in page.inner_text("#history-title")
        assert page.inner_text("#history-run-status").startswith("Completed")
        assert page.locator("#history-rerun").is_visible()
        assert page.evaluate("() => window.__owned") is None and not dialogs

        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(path=str(Path(OUTPUT) / "history-tab.png"), full_page=True)

        page.click("#history-delete-run")  # asks first
        page.wait_for_selector("#history-confirm-delete", state="visible")
        assert app.record(walrus.id) is not None
        page.click("#history-confirm-delete")
        page.wait_for_function("() => document.querySelector('#history-page')?.innerText.includes('no runs match')")
        assert f"Deleted run {walrus.id}" in page.inner_text("#history-message")
        assert app.record(walrus.id) is None
    finally:
        context.close()
