"""Gradio's queue in front of the service's fair scheduler: which Gradio limits apply to run events.

    limit = run_limit(context)                   # None with logins, else settings.ui.concurrency
    button.click(fn, **run_options(outputs, limit))   # the streaming events of Chat, Compare…
    unlimit_runs(demo, limit)                    # the same for the run events other tabs wired
    demo.max_threads = thread_cap(context)

Every event that starts or follows runs (chat, regenerate, run template, compare, evaluate, History's
re-run, the page-load restores) shares one Gradio concurrency group (`streams.RUNS`). A group's limit
is one first-come-first-served line for everyone, and a handler holds its place in it for as long as
it streams, also while its run waits in the service's line. With logins the service schedules fairly
(`service/scheduler.py`: per user, below the server's capacity, the last slots kept for others), so a
Gradio limit in front of it would bring back exactly what the scheduler removes: one user's burst
fills the group and a second user's first run waits behind it, in Gradio's queue, before the
scheduler ever sees it. So with logins the group has no limit (`None`): every run event is handed to
its handler at once and waits, if it must, in its own user's line, saying so.

What still bounds the work then: the service (per-user lines of at most `runs.max_waiting_per_user`,
runs per minute, budgets), Gradio's `queue(max_size=ui.queue_size)` (503 past it) and Gradio's
app-wide cap of active events, `max_threads` (`active_jobs` in its queue: async handlers count too).
That cap must be above what may stream and wait at once, or the first-come-first-served line comes
back one level down: `thread_cap` gives room for the server's runs plus a queue's worth of waiting
ones, plus the cheap queued events. Without logins there is no scheduler (runs start at once), so
Gradio's limit (`ui.concurrency`) stays the bound, as before.

A group's limit is the smallest any of its events was given (Gradio's `create_event_queue_for_fn`),
so every event of the group must be unlimited, also those wired inside a `gr.render` (Run template,
Compare's Run all), which `unlimit_runs` cannot reach: they take `run_options` themselves.
Stop, Clear and the pickers' events are `queue=False` and never wait in any of this.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gradio as gr

from llmtool.settings import Settings
from llmtool.ui.streams import RUNS, streaming_options
from llmtool.web.context import AppContext

CHEAP_EVENTS = 32  # room in Gradio's cap for queued events that are not runs (History's pages, loads)


def run_limit(context: AppContext) -> int | None:
    """Gradio's concurrency limit for run events: none with logins (the service's fair scheduler
    queues per user), `ui.concurrency` without."""
    return None if context.auth is not None else context.settings.ui.concurrency


def thread_cap(settings: Settings, limit: int | None) -> int:
    """Gradio's cap of active events (`max_threads`), never below `ui.max_threads`. With no limit on
    the run events: room for the server's runs, a queue's worth waiting for theirs, and the cheap
    events. With one: at least that limit (a cap below it would be the real limit)."""
    if limit is not None:
        return max(settings.ui.max_threads, limit)
    return max(settings.ui.max_threads, settings.runs.max_concurrent + settings.ui.queue_size + CHEAP_EVENTS)


def run_options(outputs: Sequence[Any], limit: int | None) -> dict[str, Any]:
    """`streams.streaming_options` with `limit` (None: no Gradio limit)."""
    return {**streaming_options(outputs, 1), "concurrency_limit": limit}


def unlimit_runs(demo: gr.Blocks, limit: int | None) -> int:
    """Give every run event of `demo` (the `streams.RUNS` group) `limit`; the number changed. For
    the tabs whose `build` takes an int limit (they are wired with `ui.concurrency`)."""
    changed = 0
    for fn in demo.fns.values():
        if fn.concurrency_id == RUNS and fn.concurrency_limit != limit:
            fn.concurrency_limit = limit
            changed += 1
    return changed
