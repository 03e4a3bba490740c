"""gr.Blocks without two costs of Gradio's that grow with the number of users and do nothing for us.

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
- **The monitoring summary is not recomputed after every event.** When an event ends, Gradio
  builds a pandas DataFrame of the last 10,000 events (`Queue.compute_analytics_summary`, in a
  worker thread) for its monitoring dashboard: ~2 ms with a few records, ~6 ms with 10,000, so
  after a busy hour every answer's end cost that much CPU. It is recomputed every
  `ANALYTICS_EVERY` events instead (Gradio's own knob, `GRADIO_ANALYTICS_CACHE_FREQUENCY`).
"""

from __future__ import annotations

from typing import Any

import gradio as gr
from gradio.blocks import BlockFunction
from gradio.components.base import _Keywords

SKIPPED = {"__type__": "update"}  # gr.skip(), and what the page is sent for it
ANALYTICS_EVERY = 1000  # events between two recomputations of Gradio's monitoring summary


class LeanBlocks(gr.Blocks):
    async def postprocess_data(self, block_fn: BlockFunction, predictions: Any, state: Any) -> list[Any]:
        skipped = skipped_outputs(block_fn, predictions)
        if not skipped:
            return await super().postprocess_data(block_fn, predictions, state)
        passed = [_Keywords.FINISHED_ITERATING if i in skipped else value for i, value in enumerate(predictions)]
        output = await super().postprocess_data(block_fn, passed, state)
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
