"""A reasoning model in a real browser: thoughts collapsed above the answer in Chat and Compare,
"thinking" in the status line, the effort picker reaching the request, the pickers' live lists.

demo:thinker thinks for `THINKING_SECONDS[effort]` (1 s at "low", the least it accepts) before it
answers; the demo answers at 400 tokens a second here (ui_settings).
"""

from __future__ import annotations

from llmtool.loopback import LoopbackServer, Scenario
from tests.ui.browser_support import pytestmark  # noqa: F401
from tests.ui.ui_support import live_model_lists

THINKER = "demo:thinker"
THOUGHT_WORDS = "Understanding the request."  # demo:thinker's first thought (demo_answers.reasoning)
THOUGHT_TITLE = "#chat .thought-group .title"
THOUGHT_BODY = "#chat .thought-group .content"
LISTED = "() => [...document.querySelectorAll('ul[role=listbox] li')].map(li => li.innerText.replace('✓', '').trim())"


def statuses_seen(ui) -> None:
    """Keep every status line the page shows (`window.__statuses`), however briefly."""
    ui.page.evaluate("""() => {
        window.__statuses = [];
        const note = () => window.__statuses.push(document.querySelector('#run-status')?.innerText ?? '');
        new MutationObserver(note).observe(document.querySelector('#run-status'),
                                           {subtree: true, childList: true, characterData: true});
    }""")


def test_the_chat_shows_the_thoughts_collapsed_above_the_answer(start_ui, open_page) -> None:
    server = start_ui(default_model=THINKER)
    ui = open_page(server.url)
    ui.choose("reasoning-effort", "low")
    statuses_seen(ui)
    ui.send("Why is the sky blue?")

    ui.page.wait_for_selector(THOUGHT_TITLE)
    ui.wait_status("Done", timeout=15_000)
    seen = ui.page.evaluate("() => window.__statuses")
    assert any(s.startswith("Thinking (") for s in seen), seen
    assert "thought 1." in ui.status()  # the run's own thinking time, in its metrics

    title = ui.text_of(THOUGHT_TITLE)
    assert title.startswith("Thought for 1."), title
    ui.page.wait_for_selector(THOUGHT_BODY, state="detached")  # collapsed once the answer began (slides shut)
    answer = ui.answer()
    assert answer.startswith("About: Why is the sky blue?") and THOUGHT_WORDS not in answer

    ui.page.click(THOUGHT_TITLE)  # expandable: the thoughts are there
    assert THOUGHT_WORDS in ui.text_of(THOUGHT_BODY)

    ui.page.reload()  # the kept conversation comes back with its thoughts
    ui.page.wait_for_selector(THOUGHT_TITLE)
    assert ui.text_of(THOUGHT_TITLE).startswith("Thought for 1.")
    ui.wait_status("Done")
    assert THOUGHT_WORDS not in ui.answer()

    ui.open_tab("History")  # the run's detail: its thoughts collapsed above its answer
    ui.page.click('#history-table [data-testid="cell-0-5"]')
    ui.wait_text("#history-answer", "About: Why is the sky blue?")
    thought = ui.page.locator("#history-answer details.thought")
    assert thought.locator("summary").inner_text().startswith("Thought for 1.")
    assert thought.get_attribute("open") is None and THOUGHT_WORDS in (thought.text_content() or "")


def test_an_effort_the_model_does_not_take_is_refused_in_the_status(ui_server, lb: LoopbackServer, open_page) -> None:
    ui = open_page(ui_server.url)
    ui.pick_model("demo:assistant")
    ui.choose("reasoning-effort", "high")
    ui.send("hi")
    status = ui.wait_status("⚠")
    assert status == "⚠ demo:assistant is not a reasoning model: leave the reasoning effort unset"
    assert "Traceback" not in ui.page.inner_text("body")
    assert ui.page.is_visible("#send")


def test_compare_shows_each_columns_thoughts_above_its_answer(start_ui, open_page) -> None:
    server = start_ui(default_model="demo:assistant")
    ui = open_page(server.url)
    ui.open_tab("Compare")
    ui.page.fill("#compare-model-1 input", THINKER)
    ui.page.press("#compare-model-1 input", "Enter")
    ui.choose("compare-effort-1", "low")
    ui.page.click("#compare-run")

    ui.wait_text("#compare-status-1", "Thinking (", start=True)
    ui.page.wait_for_selector("#compare-run", state="visible", timeout=15_000)
    thought = ui.page.locator("#compare-answer-1 details.thought")
    assert thought.locator("summary").inner_text().startswith("Thought for 1.")
    assert thought.get_attribute("open") is None  # collapsed
    assert THOUGHT_WORDS in (thought.text_content() or "")  # there, though hidden
    answer = ui.page.evaluate(
        "() => [...document.querySelector('#compare-answer-1 .md').children]"
        ".filter(e => e.tagName !== 'DETAILS').map(e => e.innerText).join('\\n')")
    assert answer.startswith("About:") and THOUGHT_WORDS not in answer
    assert ui.text_of("#compare-status-1").startswith("Done · thought 1.")
    assert ui.page.locator("#compare-answer-2 details").count() == 0  # demo:assistant does not think


def test_the_model_pickers_offer_the_providers_live_lists(start_ui, lb: LoopbackServer, open_page) -> None:
    server = start_ui()
    listed_before = lb.models
    lb.models = ["m", "fresh-model"]
    try:
        # A provider that cannot list its models: its configured ones, and a word on why.
        live_model_lists(server)
        lb.enqueue_models(Scenario(kind="http_error", status=503, error_message="listing is down"))
        ui = open_page(server.url)
        ui.wait_text("#model", "Live model list unavailable (local: ")
        ui.page.click("#model input")
        listed = ui.page.evaluate(LISTED)
        assert "local:m" in listed and "local:fresh-model" not in listed
        ui.page.keyboard.press("Escape")
        assert "⚠" not in ui.status()  # not an error for the user

        live_model_lists(server)  # nothing cached: asked again
        lb.reset()
        ui.page.reload()
        ui.page.wait_for_selector("#model input")
        ui.page.click("#model input")
        ui.page.wait_for_function(f"() => ({LISTED})().includes('local:fresh-model')")
        assert ui.page.evaluate(LISTED)[:2] == ["local:fresh-model", "local:m"]
        ui.page.keyboard.press("Escape")
        assert "Live model list unavailable" not in ui.text_of("#model")
        ui.open_tab("Compare")
        ui.page.click("#compare-model-2 input")
        assert "local:fresh-model" in ui.page.evaluate(LISTED)
        assert [r.protocol for r in lb.requests] == ["models"]  # one listing for every picker
    finally:
        lb.models = listed_before
