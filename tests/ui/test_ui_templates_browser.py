"""Templates, Compare and Evaluate in a real browser (Chromium via playwright, offline, 127.0.0.1).

The app serves the shipped templates and datasets (`prompts/`); `demo:assistant` answers offline,
`local:m` is the loopback provider.
"""

from __future__ import annotations

import json
import shutil

from llmtool.loopback import LoopbackServer, Scenario
from llmtool.templates import TemplateRegistry
from tests.ui.browser_support import DOCS, LAST_BOT, OUTPUT, pytestmark  # noqa: F401
from tests.ui.conftest import REPO_PROMPTS

ROWS = "() => Number(document.querySelector('#eval-table [role=grid]').getAttribute('aria-rowcount')) - 1"


def json_answer(label: str, reason: str) -> Scenario:
    return Scenario(text=json.dumps({"label": label, "confidence": 0.8, "reason": reason}), tokens_per_second=200)


def save_screenshot(page, name: str) -> None:
    """test-output/<name>; also docs/<name> the first time (delete it to retake)."""
    OUTPUT.mkdir(exist_ok=True)
    shot = OUTPUT / name
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    if not (DOCS / name).exists():
        DOCS.mkdir(exist_ok=True)
        shutil.copyfile(shot, DOCS / name)


def test_pick_a_template_edit_its_fields_see_the_preview_and_run_it(ui_server, lb: LoopbackServer, open_page) -> None:
    ui = open_page(ui_server.url)
    ui.choose("template", "rewrite-email")
    ui.page.wait_for_selector("#var-tone")
    for field in ("#var-email textarea", "#var-max_words input", "#var-signature textarea"):
        assert ui.page.locator(field).is_visible()
    assert ui.page.locator("#prompt textarea").is_hidden() and ui.page.locator("#send").is_hidden()
    assert ui.page.input_value("#model input") == "demo:assistant"  # the template's model
    assert ui.page.input_value("#var-tone input") == "firm but polite"  # its default
    preview = ui.wait_text("#template-preview", "Use at most 120 words.")
    assert "System prompt" in preview and "You rewrite emails." in preview

    ui.page.fill("#var-max_words input", "42")
    ui.wait_text("#template-preview", "Use at most 42 words.")
    ui.page.fill("#var-signature textarea", "Sam")
    ui.wait_text("#template-preview", 'Sign it "Sam".')

    ui.page.click("#run-template")
    status = ui.wait_status("Done")
    version = TemplateRegistry(REPO_PROMPTS).get("rewrite-email").content_hash
    assert status.endswith(f"template rewrite-email @ {version}")
    user = ui.page.locator("[data-testid=user]").last.inner_text()
    assert "Use at most 42 words." in user and 'Sign it "Sam".' in user  # the rendered prompt is the turn
    assert ui.page.evaluate(LAST_BOT)
    assert lb.requests == []  # demo:assistant, offline

    ui.choose("template", "(none)")
    ui.page.wait_for_selector("#prompt textarea", state="visible")
    ui.page.wait_for_selector("#var-tone", state="detached")


def test_compare_two_columns_and_see_both_answers(ui_server, lb: LoopbackServer, open_page) -> None:
    lb.enqueue(json_answer("billing", "A duplicate charge on an invoice."))
    ui = open_page(ui_server.url)
    ui.open_tab("Compare")
    ui.choose("compare-template-1", "classify")
    ui.choose("compare-template-2", "classify")
    ui.page.wait_for_selector("#cmp-var-document", state="detached")  # only classify's variables left
    ui.page.fill("#cmp-var-ticket textarea", "I was charged twice for the March invoice, please refund one.")
    assert ui.page.input_value("#compare-model-2 input") == "local:m"

    ui.page.click("#compare-run")
    first = ui.wait_text("#compare-status-1", "Done", start=True)
    second = ui.wait_text("#compare-status-2", "Done", start=True)
    assert "template classify @" in first and "template classify @" in second
    assert '"label"' in ui.text_of("#compare-answer-1")  # the demo model's JSON
    assert "A duplicate charge on an invoice." in ui.text_of("#compare-answer-2")
    assert ui.text_of("#compare-validation-2").startswith("Validation passed")
    prompt = lb.requests[0].body["messages"][-1]["content"]
    assert "charged twice for the March invoice" in prompt  # the edited field, read at Run
    save_screenshot(ui.page, "compare.png")


def test_evaluate_the_classify_dataset_and_filter_the_failures(ui_server, lb: LoopbackServer, open_page) -> None:
    # local:m says "bug" to everything: right for one ticket of five.
    lb.enqueue(*(json_answer("bug", "Something is broken.") for _ in range(5)))
    ui = open_page(ui_server.url)
    ui.open_tab("Evaluate")
    assert ui.page.input_value("#eval-template input") == "classify"
    assert ui.page.input_value("#eval-dataset input") == "classify.csv"
    ui.choose("eval-models", "demo:assistant")
    ui.choose("eval-models", "local:m")
    ui.page.keyboard.press("Escape")

    ui.page.click("#eval-run")
    assert ui.wait_text("#eval-progress", "Done", start=True).startswith("Done · 10/10 · 6 passed · 4 failed")
    assert ui.page.evaluate(ROWS) == 5
    assert "classify @ " in ui.text_of("#eval-summary")
    export_crash = ui.text_of("#eval-table [data-testid=cell-1-2]")
    assert export_crash.startswith("✓"), export_crash
    assert ui.text_of("#eval-table [data-testid=cell-0-2]").startswith("✗ expected to match")
    # The downloads come with the same final update; the page may draw them a moment later.
    ui.page.locator("#eval-csv").wait_for(state="visible")
    ui.page.locator("#eval-jsonl").wait_for(state="visible")

    ui.page.click("#eval-failures-only input")
    ui.page.wait_for_function(f"() => ({ROWS})() === 4")
    save_screenshot(ui.page, "evaluate.png")
    ui.page.click("#eval-failures-only input")
    ui.page.wait_for_function(f"() => ({ROWS})() === 5")


def test_stop_all_stops_every_column(ui_server, lb: LoopbackServer, open_page) -> None:
    slow = Scenario(tokens_per_second=25, text="word " * 300)
    lb.enqueue(slow, slow)
    ui = open_page(ui_server.url)
    ui.open_tab("Compare")
    ui.choose("compare-model-1", "local:m")  # both columns on the loopback provider
    ui.page.click("#compare-run")
    ui.page.wait_for_selector("#compare-stop", state="visible")
    ui.wait_text("#compare-answer-1", "word word")
    ui.wait_text("#compare-answer-2", "word word")
    ui.page.click("#compare-stop")
    for index in (0, 1):
        record = lb.wait_closed(index, timeout=5)
        assert record.closed_by_client and record.deltas_sent < 300
    ui.wait_text("#compare-status-1", "Stopped after", start=True)
    ui.wait_text("#compare-status-2", "Stopped after", start=True)
    ui.page.wait_for_selector("#compare-run", state="visible")
    assert "Stopped — partial answer." in ui.text_of("#compare-answer-1")


def test_clear_during_a_template_run_forgets_it(ui_server, lb: LoopbackServer, open_page) -> None:
    lb.enqueue(Scenario(tokens_per_second=25, text="word " * 300), Scenario(text="Fresh."))
    ui = open_page(ui_server.url)
    ui.choose("template", "summarise")
    ui.page.wait_for_selector("#run-template", state="visible")
    ui.pick_model("local:m")
    ui.page.click("#run-template")
    ui.page.wait_for_selector("#stop", state="visible")
    ui.page.wait_for_function(f"() => ({LAST_BOT})().length > 20")

    # Clear is hidden while a run streams: the Chatbot's own trash icon clears then.
    ui.page.locator("#chat button[aria-label='Clear']").first.click()
    ui.page.wait_for_selector("#stop", state="hidden")
    assert lb.wait_closed(0, timeout=5).closed_by_client
    ui.page.wait_for_timeout(500)  # any late update of the stopped run would land now
    assert ui.page.locator("[data-testid=bot]").count() == 0

    ui.page.click("#run-template")
    ui.wait_status("Done")
    roles = [m["role"] for m in lb.requests[1].body["messages"]]
    assert roles == ["system", "user"]  # nothing of the cleared run is sent again
    assert ui.page.locator("[data-testid=bot]").count() == 1
