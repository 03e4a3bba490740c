"""Stop a run wherever it runs: the one path behind the API's cancel and /lite's Stop.

    outcome = await stop_run(context, run_id, status, wait=2.0)   # "had ended", "ended" or "ending"

A run of this process is cancelled here (its provider connection closes) and waited for. A run another
replica owns is stopped through Redis (`Replicas.request_cancel`: its owner closes the connection), and
waited for until the store says it ended, so the page or status asked next on any replica agrees.
`RunElsewhere` when it cannot be reached: no Redis configured, or Redis not answering.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

from llmtool.replicas import RedisUnavailable
from llmtool.web.context import AppContext
from llmtool.web.run_status import RunStatusBody

StopOutcome = Literal["had ended", "ended", "ending"]  # nothing to stop / ended within the wait / not yet


class RunElsewhere(Exception):
    """The run runs in another process that this one cannot reach: without Redis (`redis_down` False),
    or with a Redis that does not answer (True)."""

    def __init__(self, message: str, *, redis_down: bool) -> None:
        super().__init__(message)
        self.message = message
        self.redis_down = redis_down


async def stop_run(context: AppContext, run_id: str, status: RunStatusBody, wait: float) -> StopOutcome:
    """Stop `run_id` (whose status, live here or as stored, is `status`) and wait up to `wait` seconds
    for its end."""
    run = context.service.get(run_id)
    if run is not None and not run.done:
        run.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await run.wait()
        return "ended" if run.done else "ending"
    if status.status not in ("running", "queued"):
        return "had ended"
    if context.replicas is None:
        raise RunElsewhere(f"run {run_id} is running in another llmtool process; stop it there", redis_down=False)
    try:
        ending = await context.replicas.request_cancel(run_id, wait=wait)
    except RedisUnavailable as error:
        raise RunElsewhere(error.message, redis_down=True) from None
    return "ending" if ending is None else "ended"
