"""Streams a run to a terminal: the answer on stdout as it arrives, everything else on stderr;
`run_with_service` gives a command its service on a fresh loop and closes it after.

Exit codes: 0 completed, 1 the run failed (or its answer failed validation), 2 bad usage, 130 stopped
by Ctrl-C (the run is cancelled, so the provider connection closes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TextIO

from llmtool.errors import UsageError
from llmtool.events import Completed, Failed, Retrying, Stopped, TextDelta, Validated
from llmtool.service import LLMService, RunOrigin, RunRequest
from llmtool.settings import load_settings
from llmtool.store import StoreError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


async def stream_to_console(
    service: LLMService,
    request: RunRequest | dict,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        run = service.start(request, RunOrigin(source="cli"))
    except UsageError as error:
        print(f"llmtool: {error.message}", file=err)
        return EXIT_USAGE
    print(f"· {run.model.id} · run {run.id}", file=err, flush=True)

    loop = asyncio.get_running_loop()
    interrupted = False

    def on_interrupt() -> None:
        nonlocal interrupted
        interrupted = True
        run.cancel()

    with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread, or no signals here
        loop.add_signal_handler(signal.SIGINT, on_interrupt)
    code = EXIT_OK
    ended_with_newline = True
    try:
        async for event in run.events():
            if isinstance(event, TextDelta):
                out.write(event.text)
                out.flush()
                ended_with_newline = event.text.endswith("\n")
                continue
            if not ended_with_newline and not isinstance(event, Retrying):
                out.write("\n")
                out.flush()
                ended_with_newline = True
            if isinstance(event, Retrying):
                print(f"· {event.describe()}", file=err, flush=True)
            elif isinstance(event, Validated) and not event.passed:
                print("· validation failed: " + "; ".join(event.problems), file=err)
                code = EXIT_FAILED
            elif isinstance(event, Completed):
                print(f"· done ({event.finish_reason}) · {event.metrics.summary()}", file=err)
            elif isinstance(event, Stopped):
                print(f"· stopped · {event.metrics.summary()}", file=err)
                code = EXIT_INTERRUPTED if interrupted else EXIT_FAILED
            elif isinstance(event, Failed):
                print(f"llmtool: {event.message}", file=err)
                code = EXIT_FAILED
    except BrokenPipeError:  # `llmtool chat … | head`: the reader left, stop the model too
        run.cancel()
        await run.wait()
        return EXIT_OK
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
    return code


def run_with_service(args: argparse.Namespace, body: Callable[[LLMService], Awaitable[int]]) -> int:
    """Build the service from --config (with the run store: CLI runs are kept like any other), run
    `body(service)` on a fresh loop, close everything."""

    async def main() -> int:
        settings = load_settings(args.config)
        try:
            service = await LLMService.open(settings)
        except StoreError as error:
            print(f"llmtool: cannot keep runs: {error.message} (set LLMTOOL_DATABASE_URL or database_url in the "
                  "config file)", file=sys.stderr)
            return EXIT_USAGE
        try:
            return await body(service)
        finally:
            await service.aclose()

    return asyncio.run(main())
