"""gr.Blocks without costs of Gradio's that grow with the number of users and do nothing for us.

    class GuardedBlocks(LeanBlocks): ...     # the app's Blocks (`api_guard.py`) is one

- **A skipped output costs nothing.** For every output a handler skips (`gr.skip()`), Gradio 6.31's
  `postprocess_data` builds a new instance of that output's component for the session from its
  constructor arguments and serialises its config twice, on every yield, though nothing changed: a
  streaming chat skips seven of its nine outputs mid-answer (the status, the buttons, the prompt…),
  which cost more than the chat's own update (bench/bench_gradio_load.py). Here a skipped output of
  a component (not a `gr.State`, whose skip is already free) is passed over as Gradio passes over an
  output once a generator has finished, and answered with what Gradio would have sent for it, the
  empty update `{"__type__": "update"}`: the page sees the same message, the session keeps the
  component it had.
- **Text is read and written on the event loop, not in a worker thread.** Gradio hands every input's
  `preprocess` and every output's `postprocess` to a worker thread (`anyio.to_thread.run_sync`),
  one after another: a chat start took 9 such round trips before the handler ran and 5 more for its
  first update, every mid-answer update 1–2. For components that only convert text and numbers
  (`INLINE`: no files, no images) the work is a few microseconds of Python that holds the GIL
  either way; the round trip costs far more (a thread woken, the loop woken back), and under load
  each one also waits its turn behind everything else the loop has to do: at 100 users it held
  the first text back ~0.5 s (bench/bench_gradio_load.py). Inside LeanBlocks' `preprocess_data` and
  `postprocess_data` (a context variable says so) those calls run inline; everything else, and
  every other Blocks, still goes to a thread. Gradio's blocks module reaches anyio through its
  module global `anyio`, which `install_inline_processing` wraps once (`_Anyio`); the version is
  pinned below 7, and the tests check the shortcut is taken and sends what Gradio would.
- **The monitoring summary is not recomputed after every event.** When an event ends, Gradio
  builds a pandas DataFrame of the last 10,000 events (`Queue.compute_analytics_summary`, in a
  worker thread) for its monitoring dashboard: ~2 ms with a few records, ~6 ms with 10,000, so
  after a busy hour every answer's end cost that much CPU. It is recomputed every
  `ANALYTICS_EVERY` events instead (Gradio's own knob, `GRADIO_ANALYTICS_CACHE_FREQUENCY`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from types import ModuleType
from typing import Any

import gradio as gr
import gradio.blocks
from gradio.blocks import BlockFunction
from gradio.components.base import _Keywords

SKIPPED = {"__type__": "update"}  # gr.skip(), and what the page is sent for it
ANALYTICS_EVERY = 1000  # events between two recomputations of Gradio's monitoring summary
# Components whose preprocess and postprocess only convert text, numbers and lists of them.
INLINE: tuple[type, ...] = (gr.Textbox, gr.Number, gr.Dropdown, gr.Radio, gr.Checkbox, gr.Markdown, gr.Chatbot,
                            gr.JSON, gr.Slider, gr.BrowserState)
_inline = ContextVar("llmtool_inline_processing", default=False)


class LeanBlocks(gr.Blocks):
    async def preprocess_data(self, block_fn: BlockFunction, inputs: list[Any], state: Any,
                              explicit_call: bool = False) -> Any:
        token = _inline.set(True)
        try:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        finally:
            _inline.reset(token)

    async def postprocess_data(self, block_fn: BlockFunction, predictions: Any, state: Any) -> list[Any]:
        token = _inline.set(True)
        try:
            skipped = skipped_outputs(block_fn, predictions)
            if not skipped:
                return await super().postprocess_data(block_fn, predictions, state)
            passed = [_Keywords.FINISHED_ITERATING if i in skipped else value for i, value in enumerate(predictions)]
            output = await super().postprocess_data(block_fn, passed, state)
        finally:
            _inline.reset(token)
        for index in skipped:
            output[index] = dict(SKIPPED)
        return output

    def queue(self, *args: Any, **kwargs: Any) -> Any:
        blocks = super().queue(*args, **kwargs)
        self._queue.ANAYLTICS_CACHE_FREQUENCY = max(self._queue.ANAYLTICS_CACHE_FREQUENCY, ANALYTICS_EVERY)
        return blocks


def skipped_outputs(block_fn: BlockFunction, predictions: Any) -> set[int]:
    """The indexes of the outputs (not states) `predictions` skips, for a handler that returns one
    value per output; none for anything else (a dict of outputs, a single output, a batch)."""
    outputs = block_fn.outputs
    if block_fn.batch or len(outputs) < 2 or not isinstance(predictions, (list, tuple)):
        return set()
    if len(predictions) != len(outputs):
        return set()  # (Gradio's own check says what is wrong)
    return {i for i, (block, value) in enumerate(zip(outputs, predictions, strict=True))
            if not block.stateful and isinstance(value, dict) and value == SKIPPED}


def runs_inline(func: Callable[..., Any]) -> bool:
    """Whether Gradio's hand-off of `func` to a worker thread is done inline instead: inside LeanBlocks'
    pre- and postprocessing, a text component's own `preprocess` or `postprocess`."""
    owner = getattr(func, "__self__", None)
    return (_inline.get() and isinstance(owner, INLINE)
            and getattr(func, "__name__", "") in ("preprocess", "postprocess"))


class _ToThread:
    """anyio.to_thread as Gradio's blocks module sees it: `run_sync` inline for `runs_inline`."""

    def __init__(self, real: ModuleType) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    async def run_sync(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if runs_inline(func):
            return func(*args)
        return await self._real.run_sync(func, *args, **kwargs)


class _Anyio:
    """The anyio module as Gradio's blocks module sees it, but for `to_thread`."""

    def __init__(self, real: ModuleType) -> None:
        self._real = real
        self.to_thread = _ToThread(real.to_thread)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def install_inline_processing() -> None:
    """Give Gradio's blocks module the anyio that runs text components' processing inline (once)."""
    if not isinstance(gradio.blocks.anyio, _Anyio):
        # (a module's global given a stand-in that forwards all but to_thread.run_sync to the module)
        gradio.blocks.anyio = _Anyio(gradio.blocks.anyio)  # type: ignore[assignment]


install_inline_processing()
