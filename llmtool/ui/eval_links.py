"""Permalinks: an address that opens an evaluation (or a run) in the tool, for anyone allowed to see it.

    evaluation_link("6f2a9c01d4e7")     # '?evaluation=6f2a9c01d4e7': relative, so a prefix the app is
    run_link("0b1c2d3e4f5a")            # served under stays; '?run=0b1c2d3e4f5a'
    linked(request)                     # ("evaluation", "6f2a…"), ("run", "0b1c…") or None: the page's query
    wire_run_permalink(history_view, tabs)   # blocks.py: `/?run=ID` opens the run in History

A link carries only the id. Who may see what is decided when it is opened, as everywhere else:
another user's evaluation or run answers the same "not found" as a missing one. An id is letters,
digits, `-` and `_` (at most 64): anything else in the query is not an id and is ignored.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

import gradio as gr

if TYPE_CHECKING:
    from llmtool.ui.history import HistoryView

LinkKind = Literal["evaluation", "run"]
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
HISTORY_TAB = "history-tab"
EVALUATE_TAB = "evaluate-tab"


def evaluation_link(evaluation_id: str) -> str:
    return f"?evaluation={evaluation_id}"


def run_link(run_id: str) -> str:
    return f"?run={run_id}"


def is_id(value: object) -> bool:
    return isinstance(value, str) and bool(_ID.match(value))


def linked(request: gr.Request | None) -> tuple[LinkKind, str] | None:
    """What the page's address asks to open: `?evaluation=ID` (first) or `?run=ID`; None when neither
    (or the value cannot be an id)."""
    params = getattr(request, "query_params", None) if request is not None else None
    if not params:
        return None
    kinds: tuple[LinkKind, ...] = ("evaluation", "run")
    for kind in kinds:
        value = params.get(kind)
        if value is not None:
            text = str(value).strip()
            return (kind, text) if is_id(text) else None
    return None


def link_markdown(evaluation_id: str) -> str:
    """The line under an evaluation's progress: its permalink."""
    return f"[Link to this evaluation]({evaluation_link(evaluation_id)}) · id `{evaluation_id}`"


def wire_run_permalink(view: HistoryView, tabs: gr.Tabs) -> None:
    """`/?run=ID` opens that run in the History tab (and selects the tab) when the page loads; a run
    the user may not see answers History's "not found". Call inside the Blocks, after the tabs."""
    root = gr.context.Context.root_block
    if root is None:
        return
    skipped = [gr.skip() for _ in view.outputs]

    async def open_run(request: gr.Request) -> tuple[Any, ...]:
        target = linked(request)
        if target is None or target[0] != "run":
            return (gr.skip(), *skipped)
        opened = await view.handlers.open(target[1], request)
        return (gr.Tabs(selected=HISTORY_TAB), *opened)

    root.load(open_run, outputs=[tabs, *view.outputs], api_visibility="private", show_progress="hidden")
