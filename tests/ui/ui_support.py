"""Helpers shared by the UI tests (reading Gradio outputs, waiting for conditions)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

STOPPED_MARK = "_Stopped — partial answer._"


def answer_text(chat: Any) -> str | None:
    """The last assistant message of a Chatbot output as text; None if the output was skipped."""
    if not isinstance(chat, list):
        return None
    if not chat:
        return ""
    content = chat[-1]["content"]
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def strings(outputs: list[tuple[Any, ...]], index: int) -> list[str]:
    """Output `index` of every update that set it (skipped outputs arrive as update dicts)."""
    return [o[index] for o in outputs if isinstance(o[index], str)]


def wait_for(condition: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)
