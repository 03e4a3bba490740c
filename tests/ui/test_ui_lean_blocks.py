"""LeanBlocks: a skipped output costs nothing and sends what Gradio would; Gradio's monitoring
summary is not rebuilt after every event."""

from __future__ import annotations

import threading
from typing import Any

import gradio as gr
import pytest
from gradio.state_holder import SessionState

from llmtool.ui.lean_blocks import ANALYTICS_EVERY, LeanBlocks, runs_inline, skipped_outputs


def build(kind: type[gr.Blocks]) -> tuple[gr.Blocks, Any, list[Any]]:
    with kind() as demo:
        status = gr.Markdown("ready")
        prompt = gr.Textbox("typed")
        with gr.Row() as row:
            stop = gr.Button("Stop", visible=False)
        turns = gr.State([])
        outputs = [status, prompt, row, stop, turns]
        prompt.submit(lambda: None, outputs=outputs)
    (fn,) = demo.fns.values()
    return demo, fn, outputs


UPDATES = [
    (gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()),  # mid-answer: nothing but the chat changes
    ("**streaming**", gr.skip(), gr.update(visible=False), gr.update(visible=True), ["t"]),
    (gr.skip(), "", gr.skip(), gr.skip(), gr.skip()),
]


@pytest.mark.parametrize("predictions", UPDATES)
async def test_the_page_is_sent_what_gradio_would_send(predictions: tuple[Any, ...]) -> None:
    sent = []
    for kind in (gr.Blocks, LeanBlocks):
        demo, fn, _ = build(kind)
        sent.append(await demo.postprocess_data(fn, predictions, SessionState(demo)))
    assert sent[1] == sent[0]


async def test_a_skipped_output_keeps_the_sessions_component_and_builds_none() -> None:
    demo, fn, outputs = build(LeanBlocks)
    state = SessionState(demo)
    blocks_before = dict(state.blocks_config.blocks)
    built = []
    original_init = gr.Markdown.__init__

    def counting_init(self: Any, *args: Any, **kwargs: Any) -> None:
        built.append(self)
        original_init(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gr.Markdown, "__init__", counting_init)
        for _ in range(3):
            await demo.postprocess_data(fn, (gr.skip(),) * len(outputs), state)
    assert built == []  # Gradio's own postprocess builds a new Markdown for the session every time
    assert all(state.blocks_config.blocks[k] is v for k, v in blocks_before.items())


async def test_real_updates_still_go_through_gradio() -> None:
    demo, fn, outputs = build(LeanBlocks)
    state = SessionState(demo)
    _, _, _, stop, turns = outputs
    sent = await demo.postprocess_data(fn, ("done", gr.skip(), gr.update(visible=True),
                                            gr.update(visible=False), ["a turn"]), state)
    assert sent[0] == "done" and sent[2]["visible"] is True and sent[3]["visible"] is False
    assert state[turns._id] == ["a turn"] and state[stop._id].visible is False


def test_only_a_tuple_of_values_per_output_is_looked_at() -> None:
    _, fn, outputs = build(LeanBlocks)
    skips = (gr.skip(),) * len(outputs)
    assert skipped_outputs(fn, skips) == {0, 1, 2, 3}  # not the State: its skip is already free
    assert skipped_outputs(fn, list(skips[:-1])) == set()  # the wrong number: Gradio says what is wrong
    assert skipped_outputs(fn, gr.skip()) == set()  # one skip for all: Gradio's own shortcut
    assert skipped_outputs(fn, {outputs[0]: gr.skip()}) == set()


def test_the_monitoring_summary_is_not_rebuilt_after_every_event() -> None:
    demo, _, _ = build(LeanBlocks)
    demo.queue()
    assert demo._queue.ANAYLTICS_CACHE_FREQUENCY >= ANALYTICS_EVERY


class Threads:
    """Which thread each call of a component class's preprocess / postprocess ran on."""

    def __init__(self, patch: pytest.MonkeyPatch, *kinds: type) -> None:
        self.seen: list[tuple[str, str, bool]] = []
        for kind in kinds:
            for name in ("preprocess", "postprocess"):
                patch.setattr(kind, name, self._recording(kind, name, getattr(kind, name)))

    def _recording(self, kind: type, name: str, original: Any) -> Any:
        def method(component: Any, *args: Any, **kwargs: Any) -> Any:
            self.seen.append((kind.__name__, name, threading.current_thread() is threading.main_thread()))
            return original(component, *args, **kwargs)

        method.__name__ = name
        return method


async def test_text_is_read_and_written_on_the_loop_and_the_rest_in_a_thread() -> None:
    with pytest.MonkeyPatch.context() as patch:
        threads = Threads(patch, gr.Textbox, gr.Markdown, gr.Image)
        sent = {}
        for kind in (gr.Blocks, LeanBlocks):
            with kind() as demo:
                prompt, image, status = gr.Textbox(), gr.Image(), gr.Markdown()
                prompt.submit(lambda *_: None, inputs=[prompt, image], outputs=[status, prompt])
            (fn,) = demo.fns.values()
            state = SessionState(demo)
            threads.seen.clear()
            inputs = await demo.preprocess_data(fn, ["a prompt", None], state)
            sent[kind] = inputs, await demo.postprocess_data(fn, ("**done**", ""), state)
            on_loop = {(k, n): main for k, n, main in threads.seen}
            if kind is LeanBlocks:
                assert on_loop == {("Textbox", "preprocess"): True, ("Image", "preprocess"): False,
                                   ("Markdown", "postprocess"): True, ("Textbox", "postprocess"): True}
            else:  # every other Blocks of the process keeps Gradio's threads
                assert not any(on_loop.values())
    assert sent[LeanBlocks] == sent[gr.Blocks]


def test_only_a_text_components_own_processing_runs_inline() -> None:
    box = gr.Textbox(render=False)
    assert not runs_inline(box.postprocess)  # outside LeanBlocks' processing
    assert not runs_inline(gr.Image(render=False).postprocess)
    assert not runs_inline(print)
