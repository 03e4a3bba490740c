"""Runs outlive the tab, in a real browser: a reload follows the answer again, a closed tab leaves
the run to finish and be kept, a restarted server brings the conversation back, Compare too."""

from __future__ import annotations

from llmtool.loopback import LoopbackServer, Scenario
from llmtool.store import RunQuery
from llmtool.web.app import create_app
from llmtool.web.serve import BackgroundServer
from tests.ui.browser_support import LAST_BOT, OUTPUT, pytestmark  # noqa: F401
from tests.ui.conftest import ui_settings
from tests.ui.ui_support import app_context, on_server_loop, wait_for

WORDS = " ".join(f"w{i}" for i in range(1, 121))  # 120 tokens: 4 s at 30 tokens/s, each word unique


def stored_runs(server: BackgroundServer, count: int = 1, ended: bool = True) -> list:
    """The app's stored runs, oldest first, once `count` of them (ended ones, if `ended`) are there."""
    context = app_context(server)

    def ready() -> list:
        page = on_server_loop(context, context.started_service().store.list_runs(RunQuery(limit=100)))
        runs = [r for r in reversed(page.runs) if r.ended or not ended]
        return runs if len(runs) >= count else []

    return wait_for(ready, timeout=15, what=f"{count} stored runs")


def test_a_reload_mid_answer_follows_the_same_answer_to_its_end(start_ui, lb: LoopbackServer, open_page) -> None:
    # 8 s of answer: the reload (1-2 s, more under load) and five updates after it come well before its end.
    lb.enqueue(Scenario(tokens_per_second=15, text=WORDS))
    server = start_ui()
    ui = open_page(server.url)
    ui.send("Count to 120")
    ui.page.wait_for_function(f"() => ({LAST_BOT})().includes('w10 ')")

    ui.page.reload()
    ui.page.wait_for_selector("#stop", state="visible")  # following the run again: Stop works for it
    seen = ui.answer()
    assert "w10 " in seen and "w120" not in seen, "the reload came mid-answer and shows the text so far"
    for _ in range(5):  # every view on the way is the answer's beginning: nothing lost, nothing twice
        ui.page.wait_for_function(f"n => ({LAST_BOT})().length > n", arg=len(ui.answer()))
        assert WORDS.startswith(ui.answer().strip())
    ui.wait_status("Done")
    ui.page.wait_for_selector("#stop", state="hidden")
    (run,) = stored_runs(server)
    assert run.status == "completed" and ui.answer().strip() == run.text.strip() == WORDS
    assert (run.source, run.position) == ("chat", 0) and run.conversation_id
    assert not lb.wait_closed(0).closed_by_client, "the reload did not stop the run"
    assert ui.page.inner_text("[data-testid=user]") == "Count to 120"
    OUTPUT.mkdir(exist_ok=True)
    ui.page.screenshot(path=str(OUTPUT / "restored-chat.png"))


def test_a_closed_tab_leaves_the_run_to_finish_and_be_kept(start_ui, lb: LoopbackServer, open_page) -> None:
    lb.enqueue(Scenario(tokens_per_second=60, text=WORDS))
    server = start_ui()
    ui = open_page(server.url)
    ui.send("Count to 120")
    ui.page.wait_for_function(f"() => ({LAST_BOT})().includes('w5 ')")
    ui.context.close()

    record = lb.wait_closed(0, timeout=10)
    assert not record.closed_by_client
    (run,) = stored_runs(server)
    assert run.status == "completed" and run.text.strip() == WORDS


def test_the_conversation_is_back_after_a_server_restart(loopback, lb: LoopbackServer, open_page, tmp_path) -> None:
    lb.enqueue(Scenario(text="The first answer."), Scenario(text="The second answer."))
    settings = ui_settings(loopback, database_url=f"sqlite+aiosqlite:///{tmp_path / 'runs.db'}")
    first = BackgroundServer(create_app(settings)).start()
    try:
        ui = open_page(first.url)
        ui.send("First question")
        ui.wait_status("Done")
        ui.send("Second question")
        ui.page.wait_for_function(f"() => ({LAST_BOT})().includes('The second answer.')")
        ui.wait_status("Done")
        port = first.port
    finally:
        first.stop()
    second = BackgroundServer(create_app(settings), port=port).start()  # same origin: same localStorage
    try:
        ui.page.reload()
        ui.page.wait_for_function(f"() => ({LAST_BOT})().includes('The second answer.')")
        bots = ui.page.locator("[data-testid=bot]").all_inner_texts()
        assert [b.strip() for b in bots] == ["The first answer.", "The second answer."]
        assert ui.status().startswith("Done")
        lb.enqueue(Scenario(text="The third answer."))
        ui.send("Third question")  # the conversation goes on: the provider sees the restored turns
        ui.page.wait_for_function(f"() => ({LAST_BOT})().includes('The third answer.')")
        messages = lb.requests[-1].body["messages"]
        assert [m["content"] for m in messages] == [
            "First question", "The first answer.", "Second question", "The second answer.", "Third question"]
        runs = stored_runs(second, 3)
        assert [r.position for r in runs] == [0, 1, 2] and len({r.conversation_id for r in runs}) == 1
    finally:
        second.stop()


def test_compare_columns_are_followed_again_after_a_reload(start_ui, lb: LoopbackServer, open_page) -> None:
    lb.enqueue(Scenario(tokens_per_second=30, text=WORDS), Scenario(tokens_per_second=40, text=WORDS))
    server = start_ui()
    ui = open_page(server.url)
    ui.open_tab("Compare")
    ui.choose("compare-template-1", "summarise")
    ui.choose("compare-template-2", "summarise")
    ui.choose("compare-model-1", "local:m")
    ui.page.click("#compare-run")
    ui.wait_text("#compare-answer-1", "w10 ")

    ui.page.reload()
    ui.page.wait_for_selector("#prompt textarea")
    ui.open_tab("Compare")
    ui.wait_text("#compare-answer-1", "w10 ")
    assert "w120" not in ui.text_of("#compare-answer-1") and ui.page.is_visible("#compare-stop")
    for column in (1, 2):
        ui.wait_text(f"#compare-status-{column}", "Done", start=True)
        assert ui.text_of(f"#compare-answer-{column}").strip() == WORDS
    runs = stored_runs(server, 2)
    assert [r.status for r in runs] == ["completed", "completed"] and {r.source for r in runs} == {"compare"}
    assert not any(lb.wait_closed(i).closed_by_client for i in (0, 1))

    ui.page.reload()  # finished columns: their stored answers
    ui.page.wait_for_selector("#prompt textarea")
    ui.open_tab("Compare")
    for column in (1, 2):
        ui.wait_text(f"#compare-status-{column}", "Done", start=True)
        assert ui.text_of(f"#compare-answer-{column}").strip() == WORDS


def open_conversation_app(settings):
    """The chat plus an "Elsewhere" tab whose button opens the conversation id typed in its box."""
    from contextlib import asynccontextmanager

    import gradio as gr
    from fastapi import FastAPI

    from llmtool.ui.blocks import CHAT_TAB, build_components, page_options, wire_events, wire_open_conversation
    from llmtool.ui.handlers import ChatHandlers
    from llmtool.web.context import AppContext

    context = AppContext(settings)
    context.prepare()

    @asynccontextmanager
    async def lifespan(_: FastAPI):  # type: ignore[no-untyped-def]
        await context.start()
        try:
            yield
        finally:
            await context.aclose()

    app = FastAPI(lifespan=lifespan)
    app.state.context = context
    with gr.Blocks(analytics_enabled=False) as demo, gr.Tabs(elem_id="tabs") as tabs:
        with gr.Tab("Chat", id=CHAT_TAB):
            chat = build_components(context)
            handlers = ChatHandlers(context)
            wire_events(chat, handlers, 4, demo)
        with gr.Tab("Elsewhere", id="elsewhere-tab"):
            box = gr.Textbox(elem_id="open-id")
            button = gr.Button("Open", elem_id="open")
            wire_open_conversation(chat, handlers, button.click, box, tabs)
    demo.queue(default_concurrency_limit=4)
    return gr.mount_gradio_app(app, demo, path="/", **page_options())


def test_another_tab_opens_a_kept_conversation_in_the_chat(loopback, lb: LoopbackServer, open_page) -> None:
    lb.enqueue(Scenario(text="The kept answer."))
    with BackgroundServer(open_conversation_app(ui_settings(loopback))) as server:
        ui = open_page(server.url)
        ui.send("Keep this")
        ui.wait_status("Done")
        (run,) = stored_runs(server)
        ui.page.click("#clear")
        ui.page.wait_for_function(f"() => !({LAST_BOT})()")
        ui.open_tab("Elsewhere")
        ui.page.fill("#open-id textarea", run.conversation_id)
        ui.page.click("#open")
        ui.page.wait_for_function(f"() => ({LAST_BOT})().includes('The kept answer.')")  # on the Chat tab
        assert ui.page.is_visible("#prompt textarea")
        ui.page.reload()  # the browser keeps the opened conversation
        ui.page.wait_for_function(f"() => ({LAST_BOT})().includes('The kept answer.')")
