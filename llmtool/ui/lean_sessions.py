"""Gradio's per-session state without a copy of the whole page's config in every session.

    install_lean_sessions(gradio_app)   # after mounting: the app's sessions are LeanSessionStates

Gradio 6.31 builds, for every new session (every tab that opens the page), the config of every
block of the page (`SessionState.config_values`: props, choices, labels… for our 218 blocks,
~1,200 objects and ~350 KB) and keeps it as long as the session is kept: sessions are dropped only
past `state_session_capacity` (10,000), never on a timer. It is read only by Gradio's deep links
(`/gradio_api/deep_link`, which llmtool's page does not offer) and kept current for the blocks a
handler updates. Built at the first join it cost ~8 ms of the event loop per new session; kept, it
filled the collector's oldest generation, whose full passes then stopped the event loop for
0.2–0.4 s at a time while 100 users streamed (bench/bench_gradio_load.py).

Here a session keeps the blocks and values Gradio gives it and builds the configs only when
something asks for them all (`components`, the deep link), from those: what Gradio reads is what
it would have read. (Built at each session's first event instead, for that event's inputs, they
still cost ~2 ms of the loop before every first answer.)
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from copy import copy
from typing import Any

import gradio as gr
from gradio.state_holder import SessionState, StateHolder


class LeanSessionState(SessionState):
    def __init__(self, blocks: gr.Blocks) -> None:  # (SessionState.__init__ but `config_values`)
        self.blocks_config = copy(blocks.default_config)
        self.config_values: dict[int, dict[str, Any]] = {}  # built when something reads them all
        self.state_data: dict[int, Any] = {}
        self._state_ttl: dict[int, Any] = {}
        self.is_closed = False
        self.STATE_TTL_WHEN_CLOSED = 1 if os.getenv("GRADIO_IS_E2E_TEST", None) else 3600
        self._page = blocks  # whose blocks `components` covers, as SessionState's config did
        self._values: dict[int, Any] = {}  # values Gradio put in configs not built yet
        self._touched: set[int] = set()  # blocks Gradio updated (a rendered one too: SessionState keeps its config)

    def __setitem__(self, key: int, value: Any) -> None:  # (SessionState's, the config left to be built)
        block = self.blocks_config.blocks.get(key)
        if isinstance(block, gr.State):
            self._state_ttl[key] = (block.time_to_live, datetime.datetime.now())
            self.state_data[key] = value
        else:
            self.blocks_config.blocks[key] = value
        self._stale(key)

    def _update_config(self, key: int) -> None:
        self._stale(key)

    def _update_value_in_config(self, key: int, value: Any) -> None:
        config = self.config_values.get(key)
        if config is None:
            self._values[key] = value
            self._touched.add(key)
        elif "props" in config:
            config["props"]["value"] = value

    def _stale(self, key: int) -> None:
        """The block changed: its config is built again from it when asked for."""
        self.config_values.pop(key, None)
        self._values.pop(key, None)
        if key in self.blocks_config.blocks:
            self._touched.add(key)

    @property
    def components(self) -> Iterator[dict]:
        """Every block's config, as SessionState has them from the start (in the page's order)."""
        built: dict[int, dict[str, Any]] = {}
        for key, block in self.blocks_config.blocks.items():
            if key in self.config_values:
                built[key] = self.config_values[key]
            elif key in self._page.blocks or key in self._touched:
                built[key] = self.blocks_config.config_for_block(key, [], block)
                if key in self._values and "props" in built[key]:
                    built[key]["props"]["value"] = self._values[key]
        self.config_values, self._values, self._touched = built, {}, set()
        yield from super().components


class LeanStateHolder(StateHolder):
    def __getitem__(self, session_id: str) -> SessionState:
        if session_id not in self.session_data:
            self.session_data[session_id] = LeanSessionState(self.blocks)
        return super().__getitem__(session_id)


def install_lean_sessions(gradio_app: Any) -> LeanStateHolder:
    """Give a mounted Gradio app (`gradio.routes.App`, before it serves) a LeanStateHolder."""
    current: StateHolder = gradio_app.state_holder
    holder = LeanStateHolder()
    holder.set_blocks(current.blocks)  # (also `blocks.state_holder`: both read the same holder)
    holder.session_data.update(current.session_data)
    holder.time_last_used.update(current.time_last_used)
    gradio_app.state_holder = holder
    return holder
