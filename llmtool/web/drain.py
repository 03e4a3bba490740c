"""Shut down cleanly on SIGTERM (or Ctrl+C): drain first, while still serving, then let uvicorn stop.

    restore = drain_on_signals(context)     # the lifespan, at start (main thread only)
    ...
    restore()                               # the lifespan, at its end

uvicorn's own shutdown closes the listening socket at once and then gives open connections
`timeout_graceful_shutdown` seconds before cutting them: a balancer could not ask `/readyz`, and a
long answer's stream would be cut. So the first SIGTERM/SIGINT goes to us instead: the service stops
taking new runs (`ServerDrainingError`, the API's 503; `/readyz` says `draining`), running runs get
`runs.drain_seconds` (default 30) to finish while every stream keeps being served, the rest end
`interrupted` (text kept); only then is uvicorn's own handler called, and its graceful shutdown has
nothing left to wait for but the last events of the streams. A second signal cuts the grace short.
Servers run in a thread (tests' `BackgroundServer`) have no signals: nothing is installed there.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmtool.web.context import AppContext

log = logging.getLogger(__name__)
SIGNALS = (signal.SIGTERM, signal.SIGINT)


def drain_on_signals(context: AppContext) -> Callable[[], None]:
    """Catch SIGTERM and SIGINT for a drain (see the module); returns what puts the handlers back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {sig: signal.getsignal(sig) for sig in SIGNALS}
    state: dict[str, Any] = {"task": None}

    def exit_now(sig: int, frame: FrameType | None) -> None:
        handler = previous.get(sig)
        if callable(handler):
            handler(sig, frame)  # uvicorn's handle_exit: its graceful shutdown starts
        else:  # nobody else listened: behave as the signal would have
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
            signal.raise_signal(sig)

    async def drain_then_exit(sig: int, grace: float) -> None:
        try:
            await context.drain(grace)
        except Exception:  # never keep the process from stopping
            log.exception("draining failed; stopping anyway")
        exit_now(sig, None)

    def on_signal(sig: int, frame: FrameType | None) -> None:
        task: asyncio.Task[None] | None = state["task"]
        grace = context.settings.runs.drain_seconds
        if task is None:
            log.warning("%s: draining: no new runs; running ones get up to %g s (a second signal, or Ctrl+C "
                        "again, interrupts them now), then the server stops", signal.Signals(sig).name, grace)
        elif not task.done():  # a second signal: interrupt the running runs now
            task.cancel()
            grace = 0.0
        else:
            exit_now(sig, frame)
            return
        state["task"] = loop.create_task(drain_then_exit(sig, grace), name="llmtool-drain")

    for sig in SIGNALS:
        signal.signal(sig, lambda sig, frame: loop.call_soon_threadsafe(on_signal, sig, frame))

    def restore() -> None:
        for sig, handler in previous.items():
            if handler is not None:
                signal.signal(sig, handler)

    return restore
