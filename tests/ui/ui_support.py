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


def on_server_loop(context: Any, coroutine: Any, timeout: float = 10.0) -> Any:
    """Run `coroutine` on the server's event loop (the service and its store belong to it)."""
    import asyncio

    loop = context._loop  # the loop AppContext.start() ran on; no public handle, tests only
    assert loop is not None, "the server has not started the service yet"
    return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout)


def stored_run(context: Any, run_id: str) -> Any:
    """The run's record in the store, read on the server's loop."""
    service = context.started_service()
    assert service is not None
    return on_server_loop(context, service.record(run_id))


def app_context(server: Any) -> Any:
    """The AppContext of an app served by a BackgroundServer (create_app keeps it in app.state)."""
    return server.server.config.app.state.context
