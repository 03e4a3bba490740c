"""The chat tab in a real browser: pip playwright driving Debian's Chromium, offline, on 127.0.0.1."""

from __future__ import annotations

import json
import shutil

from llmtool.loopback import LoopbackServer, Scenario
from tests.ui.browser_support import DOCS, LAST_BOT, OUTPUT, pytestmark  # noqa: F401
from tests.ui.ui_support import STOPPED_MARK

README_SCREENSHOT = DOCS / "screenshot.png"


def test_type_see_it_grow_stop_and_keep_the_partial_answer(ui_server, lb: LoopbackServer, open_page) -> None:
    lb.enqueue(Scenario(tokens_per_second=25, text="word " * 300))
    ui = open_page(ui_server.url)
    ui.send("Tell me a long story")

    ui.page.wait_for_selector("#stop", state="visible")
    ui.page.wait_for_function(f"() => ({LAST_BOT})().length > 20")
    seen = len(ui.answer())
    ui.page.wait_for_function(f"n => ({LAST_BOT})().length > n", arg=seen)  # it grows
    assert ui.status().startswith("Streaming")

    ui.page.click("#stop")
    ui.page.wait_for_selector("#stop", state="hidden")
    ui.page.wait_for_selector("#send", state="visible")
    record = lb.wait_closed(0, timeout=5)
    assert record.closed_by_client, "Stop must close the provider connection, not only the page's"

    answer = ui.answer()
    assert STOPPED_MARK.strip("_") in answer
    partial = answer.split(STOPPED_MARK.strip("_"))[0].split()
    assert len(partial) >= 5 and set(partial) == {"word"}
    assert len(partial) < 300 and record.deltas_sent < 300
    assert ui.wait_status("Stopped after").endswith("partial answer kept")
    assert ui.foreign_loads() == []


def xss_payloads(tracker: str) -> str:
    return "\n\n".join([
        "Here is some HTML:",
        '<script>window.__xss = "script"; alert("script")</script>',
        '<img src=x onerror="window.__xss = \'img onerror\'; alert(1)">',
        '<svg onload="window.__xss = \'svg onload\'"><circle r="5"/></svg>',
        '<details open ontoggle="window.__xss = \'details ontoggle\'"><summary>s</summary>d</details>',
        '<iframe src="javascript:parent.__xss = \'iframe\'"></iframe>',
        '<a id="jslink" href="javascript:window.__xss = \'a href\'">html link</a>',
        "[markdown link](javascript:window.__xss='markdown link')",
        f"![remote markdown image]({tracker}/leak/markdown.png)",
        f'<img src="{tracker}/leak/html.png" alt="remote html image">',
        f'<img srcset="{tracker}/leak/srcset.png 1x">',
        f'<video poster="{tracker}/leak/poster.png"></video>',
        f'<object data="{tracker}/leak/object"></object>',
        f'<style>body {{ background: url("{tracker}/leak/css.png") }}</style>',
        "The end.",
    ])


def test_html_and_script_in_model_output_execute_nothing_and_load_nothing(
    ui_server, lb: LoopbackServer, open_page
) -> None:
    tracker = lb.url  # another origin: any request it records is a leak
    lb.enqueue(Scenario(text=xss_payloads(tracker)))
    ui = open_page(ui_server.url)
    ui.send("Show me some HTML")
    ui.wait_status("Done")
    bot = ui.page.locator("[data-testid=bot]").last
    assert "The end." in bot.inner_text()  # the payload really was rendered

    for name in ("markdown link", "html link"):
        link = bot.get_by_text(name)
        if link.count():
            link.first.click()
    ui.page.wait_for_timeout(300)

    assert ui.page.evaluate("() => window.__xss ?? null") is None
    assert ui.dialogs == []
    assert [r.path for r in lb.requests if r.path.startswith("/leak")] == []
    assert ui.foreign_loads() == []


def test_the_page_holds_no_key(start_ui, open_page) -> None:
    key = "sk-test-NEVER-IN-THE-PAGE-31337"
    server = start_ui(openai_api_key=key)
    ui = open_page(server.url)
    config = ui.page.evaluate("() => JSON.stringify(window.gradio_config ?? {})")
    storage = ui.page.evaluate("() => JSON.stringify([{...localStorage}, {...sessionStorage}])")
    assert "openai:gpt-5" in config  # the key made OpenAI models usable, listed by name only
    for text in (ui.page.content(), config, storage):
        assert key not in text
    assert json.loads(config)["show_error"] is False


def test_a_finished_run_looks_right(ui_server, lb: LoopbackServer, open_page) -> None:
    ui = open_page(ui_server.url)
    ui.pick_model("demo:assistant")
    ui.send("How do I stop a streaming answer without losing it?")
    status = ui.wait_status("Done")
    assert "TTFT" in status and "tok" in status and "$" in status
    bot = ui.page.locator("[data-testid=bot]").last
    assert bot.locator("table").count() == 1 and bot.locator("pre code").count() == 1  # Markdown rendered
    assert ui.page.inner_text("#validation") == "No validation rules"

    for _ in range(5):  # show the question and the start of the answer (autoscroll undoes the first try)
        ui.page.evaluate("() => { document.querySelector('#chat .bubble-wrap').scrollTop = 0 }")
        ui.page.wait_for_timeout(300)
        if ui.page.evaluate("() => document.querySelector('#chat .bubble-wrap').scrollTop") == 0:
            break
    OUTPUT.mkdir(exist_ok=True)
    shot = OUTPUT / "ui-finished-run.png"
    ui.page.screenshot(path=str(shot), clip={"x": 0, "y": 0, "width": 1280, "height": 760})
    assert shot.stat().st_size > 20_000
    if not README_SCREENSHOT.exists():  # taken once for the README; delete it to retake
        README_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, README_SCREENSHOT)
    assert lb.requests == []  # the demo model never touches the network
