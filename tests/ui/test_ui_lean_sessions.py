"""LeanSessionState: a new session builds no config of the page's blocks; Gradio reads the same
configs and values from it as from its own SessionState."""

from __future__ import annotations

from typing import Any

import gradio as gr
from gradio.state_holder import SessionState

from llmtool.ui.lean_sessions import LeanSessionState, LeanStateHolder
from llmtool.web.app import create_app
from tests.web.support import make_settings


def page() -> tuple[gr.Blocks, Any, list[Any]]:
    with gr.Blocks() as demo:
        status = gr.Markdown("ready")
        prompt = gr.Textbox("typed", label="Prompt")
        with gr.Row():
            model = gr.Dropdown(["a", "b"], value="a")
            stop = gr.Button("Stop", visible=False)
        turns = gr.State([])
        for n in range(20):  # the rest of a page, which a chat event never touches
            gr.Textbox(f"field {n}", label=f"field {n}")
        prompt.submit(lambda p, m, t: None, inputs=[prompt, model, turns], outputs=[status, prompt, stop, turns])
    (fn,) = demo.fns.values()
    return demo, fn, [status, prompt, model, stop, turns]


def test_it_has_what_gradios_session_state_has() -> None:
    demo, _, _ = page()
    # A Gradio upgrade that gives SessionState something new to keep fails here, not in a session.
    assert set(vars(LeanSessionState(demo))) - {"_page", "_values", "_touched"} == set(vars(SessionState(demo)))
    for name in ("__setitem__", "_update_config", "_update_value_in_config", "components"):
        assert name in vars(SessionState)  # what Gradio calls, and LeanSessionState replaces


def test_a_new_session_builds_no_config() -> None:
    demo, _, _ = page()
    assert SessionState(demo).config_values  # Gradio's: every block's, at once
    assert LeanSessionState(demo).config_values == {}


async def event(demo: gr.Blocks, fn: Any, state: SessionState, inputs: list[Any], outputs: tuple[Any, ...]) -> Any:
    await demo.preprocess_data(fn, inputs, state)
    return await demo.postprocess_data(fn, outputs, state)


async def test_an_event_builds_no_config_and_gradio_sees_the_same_values_and_configs() -> None:
    demo, fn, (_, prompt, model, stop, turns) = page()
    gradio_state, lean = SessionState(demo), LeanSessionState(demo)
    for state in (gradio_state, lean):
        await event(demo, fn, state, ["hello", "b", []],
                    ("**streaming**", "", gr.update(visible=True), ["a turn"]))
    assert lean.config_values == {}  # nothing asked for them
    assert lean[turns._id] == gradio_state[turns._id] == ["a turn"]
    assert lean[stop._id].visible is gradio_state[stop._id].visible is True
    # Everything (a deep link) reads every block's config, in the page's order, as Gradio has it:
    # the values the event read (the model picked) and wrote (the prompt cleared) included.
    assert list(lean.components) == list(gradio_state.components)
    assert lean.config_values[prompt._id]["props"]["value"] == ""
    assert lean.config_values[model._id]["props"]["value"] == "b"
    await event(demo, fn, lean, ["again", "a", ["a turn"]], ("**done**", "", gr.update(visible=False), ["b"]))
    await event(demo, fn, gradio_state, ["again", "a", ["a turn"]], ("**done**", "", gr.update(visible=False), ["b"]))
    assert list(lean.components) == list(gradio_state.components)  # (once built, kept current)
    assert len(list(lean.components)) == len(list(gradio_state.components)) > 20


def test_the_mounted_tool_keeps_lean_sessions(tmp_path: Any) -> None:
    app = create_app(make_settings(None, tmp_path))
    (gradio_app,) = [route.app for route in app.routes if getattr(route, "path", None) == ""]
    while not hasattr(gradio_app, "state_holder"):  # inside our middlewares (ApiGuard, …)
        gradio_app = gradio_app.app
    holder = gradio_app.state_holder
    assert isinstance(holder, LeanStateHolder)
    assert holder.blocks.state_holder is holder  # what Blocks reads is what the routes read
    assert isinstance(holder["a-session"], LeanSessionState)


def test_a_block_added_in_a_session_is_in_its_configs_as_gradio_has_it() -> None:
    demo, _, _ = page()
    gradio_state, lean = SessionState(demo), LeanSessionState(demo)
    for state in (gradio_state, lean):  # as gr.render adds a block to one session
        added = gr.Textbox("rendered", label="added", render=False)
        state[10_000] = added
        state._update_config(10_000)
    assert list(lean.components) == list(gradio_state.components)
    assert any(config["id"] == 10_000 for config in lean.components)
