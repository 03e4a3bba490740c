"""The chat's first text is not held back by the pace: a run's status-only start (its `started`
event) waits for the interval, the first words go out the moment they come, the end at once."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

from llmtool.settings import load_settings
from llmtool.ui.handlers import ChatHandlers
from llmtool.web.context import AppContext
from tests.ui.ui_support import answer_text

INTERVAL = 5.0  # s: the widest the setting allows; nothing here may wait for it
FIRST_TOKEN = 0.05  # s: the demo model's pause before its first token
EMPTY = ("", "…")  # an answer with no text yet


async def test_the_first_text_goes_out_as_it_comes_and_the_start_alone_makes_no_update(tmp_path: Path) -> None:
    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/runs.db", default_model="demo:assistant",
        demo={"first_token_delay": FIRST_TOKEN, "tokens_per_second": 100_000}, ui={"update_interval": INTERVAL},
    )
    context = AppContext(settings)
    await context.start()
    try:
        handlers = ChatHandlers(context)
        asked = time.monotonic()
        updates: list[tuple[float, str | None]] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (gr.Warning outside a Gradio event, if any)
            async for outputs in handlers.send("Hello", model="demo:assistant"):
                updates.append((time.monotonic() - asked, answer_text(outputs[0])))
    finally:
        await context.aclose()
    shown, *rest = updates
    assert shown[1] in EMPTY  # the page at once: the prompt and an answer to come
    assert rest, updates
    first_text_at, first_text = rest[0]
    assert first_text not in EMPTY, f"an update before the first text: {updates}"  # `started` went with it
    assert first_text_at < 1.0  # not after the interval (5 s)
    assert updates[-1][0] < 2.0 and updates[-1][1]  # nor the end
