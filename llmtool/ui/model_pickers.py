"""The model pickers offer what the providers list now: one page-load event refreshes them all.

    pickers = ModelPickers(context)
    pickers.add(chat.model, note=True)             # the Chat's picker says when a live list failed
    pickers.add(compare_model, first=[TEMPLATE_MODEL])
    pickers.wire(demo)                             # on page load: `service.model_lists` (cached, TTL)

The page is built with the configured models (`context.model_ids`); on load each picker gets the
providers' live lists (the configured ones stand in for a provider that could not be asked, which
is no error for the user). Every picker keeps `allow_custom_value`: any `PROVIDER:MODEL` can be typed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr

from llmtool.ui.handlers import login
from llmtool.ui.status import escape_markdown
from llmtool.web.context import AppContext

log = logging.getLogger(__name__)
ANY_MODEL = "Any PROVIDER:MODEL can be typed."


@dataclass(frozen=True)
class _Picker:
    dropdown: gr.Dropdown
    first: tuple[str, ...]  # choices offered before the models ("(any)", "(the template's model)")
    note: bool  # say in its info line which providers' lists could not be had


class ModelPickers:
    def __init__(self, context: AppContext) -> None:
        self.context = context
        self._pickers: list[_Picker] = []

    def add(self, dropdown: gr.Dropdown, first: Sequence[str] = (), note: bool = False) -> None:
        self._pickers.append(_Picker(dropdown, tuple(first), note))

    def wire(self, demo: gr.Blocks) -> None:
        """Refresh every picker when the page loads."""
        if self._pickers:
            demo.load(self.refresh, outputs=[p.dropdown for p in self._pickers], queue=False,
                      show_progress="hidden", api_visibility="private")

    async def refresh(self, request: gr.Request | None = None) -> tuple[Any, ...]:
        """One update per picker: the live model ids the user's role may use (values stay as they are)."""
        service = self.context.service
        try:
            listed = await service.model_lists.all()
        except Exception:  # the configured lists the page was built with stay
            log.exception("could not list the providers' models")
            return tuple(gr.skip() for _ in self._pickers)
        ids = list(dict.fromkeys(model.id for provider in listed for model in provider.models))
        user = login(request)
        if user is not None and service.principals is not None:
            allowed = set(await service.allowed_model_ids(user))
            ids = [model_id for model_id in ids if model_id in allowed]
        problems = [f"{p.provider}: {p.problem}" for p in listed if p.problem]
        note = None
        if problems:
            note = escape_markdown(self.context.redact(
                "Live model list unavailable (" + "; ".join(problems) + "); the configured models are offered. "
                + ANY_MODEL))
        updates = []
        for picker in self._pickers:
            choices = [*picker.first, *ids]
            if picker.note and note is not None:
                updates.append(gr.update(choices=choices, info=note))
            else:
                updates.append(gr.update(choices=choices))
        return tuple(updates)
