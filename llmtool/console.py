"""Streams a run to a terminal: the answer on stdout as it arrives, everything else on stderr (a
reasoning model's thoughts dimmed as they stream, unless hidden; notices; the metrics; how to price
a model whose cost is unknown); `run_with_service` gives a command its service on a fresh loop and
closes it after.

Every byte the CLI prints goes through the redactor: `guarded_output` (entered by `llmtool.cli.main`
around every command) puts stdout and stderr behind a `MaskedStream` and sends log records (and an
unexpected traceback) to the masked stderr, so a provider error, a log line or a model's answer
that echoes a key, whole or in pieces, URL-encoded or in base64, shows `***`:

    with guarded_output(config):            # the keys of the settings and of the environment
        print(provider_error, file=sys.stderr)

Exit codes: 0 completed, 1 the run failed (or its answer failed validation), 2 bad usage, 130 stopped
by Ctrl-C (the run is cancelled, so the provider connection closes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import logging
import os
import re
import signal
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TextIO, cast

from llmtool.catalog import ModelInfo
from llmtool.errors import UsageError
from llmtool.events import Completed, Failed, Notice, ReasoningDelta, Retrying, Stopped, TextDelta, Validated
from llmtool.redact import Redactor, settings_secrets
from llmtool.service import LLMService, RunOrigin, RunRequest
from llmtool.settings import config_path, load_settings
from llmtool.store import StoreError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DIM, RESET = "\x1b[2m", "\x1b[0m"


def dims(stream: TextIO) -> bool:
    """Whether to dim text on `stream`: a terminal, and NO_COLOR unset (no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed
        return False


def price_hint(service: LLMService, model: ModelInfo, err: TextIO) -> None:
    """Say once how to price a model whose cost is unknown (nothing for a priced one)."""
    hint = service.catalog.price_hint(model)
    if hint is not None:
        print(f"· {hint}", file=err)


class _Reasoning:
    """A run's thoughts on stderr as they stream: dimmed on a terminal, ended by a newline before
    anything else is printed; with `show=False` only a line saying the model is thinking."""

    def __init__(self, err: TextIO, show: bool) -> None:
        self.err, self.show, self.dim = err, show, dims(err)
        self.began = False
        self.dimmed = False  # the terminal is dimming what is written
        self.open = False  # thoughts printed and not yet ended by a newline

    def add(self, event: ReasoningDelta) -> None:
        if not self.began:
            self.began = True
            print("· thinking…" + ("" if self.show else " (--no-reasoning: its thoughts are not shown)"),
                  file=self.err, flush=True)
        if not self.show or not event.text:
            return
        if self.dim and not self.dimmed:
            self.err.write(DIM)
            self.dimmed = True
        self.err.write(event.text)
        self.err.flush()
        self.open = not event.text.endswith("\n")

    def close(self) -> None:
        """The thoughts are over (the answer begins, or anything else comes): undim, end the line."""
        if not (self.dimmed or self.open):
            return
        self.err.write((RESET if self.dimmed else "") + ("\n" if self.open else ""))
        self.err.flush()
        self.dimmed = self.open = False


async def stream_to_console(
    service: LLMService,
    request: RunRequest | dict,
    out: TextIO | None = None,
    err: TextIO | None = None,
    *,
    show_reasoning: bool = True,
) -> int:
    """Run `request`: the answer alone on `out` (stdout), the rest on `err` (stderr); the exit code."""
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
    thoughts = _Reasoning(err, show_reasoning)
    try:
        async for event in run.events():
            if isinstance(event, ReasoningDelta):
                thoughts.add(event)
                continue
            thoughts.close()
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
            elif isinstance(event, Notice):
                print(f"· {event.message}", file=err, flush=True)
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
            if isinstance(event, Completed | Stopped | Failed) and event.metrics.cost_usd is None \
                    and (not isinstance(event, Failed) or event.text or event.reasoning):  # tokens were billed
                price_hint(service, run.model, err)
    except BrokenPipeError:  # `llmtool chat … | head`: the reader left, stop the model too
        run.cancel()
        await run.wait()
        return EXIT_OK
    finally:
        with contextlib.suppress(OSError, ValueError):  # never leave the terminal dimmed
            thoughts.close()
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


# -- every output through the redactor ---------------------------------------------------------
# Environment variables whose value is a credential by their name (OPENAI_API_KEY, GITHUB_TOKEN…).
_SECRET_NAME = re.compile(r"(?:^|_)(?:API_?KEY|KEY|TOKEN|SECRET|PASSWORD|PASSWD)$", re.IGNORECASE)
_GUESSED = 8  # a value found by its name only: shorter ones (`…_KEY=true`) would mask ordinary words
# `api_key = "…"` (any key, token, secret or password) in a config file TOML cannot read.
_SECRET_ASSIGNMENT = re.compile(
    r"""^\s*[\w.-]*(?:key|token|secret|password)[\w.-]*\s*=\s*(["'])([^"'\r\n]+)\1""",
    re.IGNORECASE | re.MULTILINE,
)


def cli_redactor(config: str | Path | None) -> Redactor:
    """The keys the CLI must never print: those of the settings (providers, endpoints, credentials
    in base URLs), and every environment variable named like a credential. Settings that do not
    load (their error is about to be printed) still give the environment's keys and the values
    assigned to `…key`/`…token`/`…secret`/`…password` in the config file."""
    secrets = [value for name, value in os.environ.items() if _SECRET_NAME.search(name) and len(value) >= _GUESSED]
    with contextlib.suppress(UsageError):  # the command reports the problem; what it prints is still masked
        return Redactor([*secrets, *settings_secrets(load_settings(config))])
    try:
        path = config_path(config)
        text = path.read_text(encoding="utf-8", errors="replace") if path is not None else ""
    except (OSError, UsageError):
        text = ""
    found = (match.group(2) for match in _SECRET_ASSIGNMENT.finditer(text))
    return Redactor([*secrets, *(value for value in found if len(value) >= _GUESSED)])


class MaskedStream(io.TextIOBase):
    """A text stream that masks every secret of `redactor` before it reaches `stream`. A key
    written in pieces is masked whole: the shortest tail that could still become a secret is held
    back until the next write shows it cannot (or `release()`, when the command ends) — `flush()`
    never lets a piece out. Thread-safe: log records may come from worker threads."""

    def __init__(self, stream: TextIO, redactor: Redactor) -> None:
        super().__init__()
        self.stream = stream
        self._masker = redactor.stream()
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            masked = self._masker.feed(text)
            if masked:
                self.stream.write(masked)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            self.stream.flush()

    def release(self) -> None:
        """Write what is held back (masked): the output has ended."""
        with self._lock:
            rest = self._masker.flush()
            if rest:
                self.stream.write(rest)
            self.stream.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]  # TextIOBase declares it read-only
        return getattr(self.stream, "encoding", None) or "utf-8"

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self.stream, "errors", None)

    def close(self) -> None:  # the real stream stays open: it is not ours to close
        self.release()


@contextlib.contextmanager
def guarded_output(config: str | Path | None) -> Iterator[Redactor]:
    """stdout, stderr and logging behind the redactor of `config` for the block (see the module
    docstring); an exception escaping the block is printed masked, then raised as `SystemExit(1)`."""
    redactor = cli_redactor(config)
    real_out, real_err = sys.stdout, sys.stderr
    out, err = MaskedStream(real_out, redactor), MaskedStream(real_err, redactor)
    handler = logging.StreamHandler(cast(TextIO, err))  # the look of logging's last-resort handler
    handler.setLevel(logging.WARNING)
    root = logging.getLogger()
    root.addHandler(handler)
    sys.stdout, sys.stderr = cast(TextIO, out), cast(TextIO, err)
    try:
        yield redactor
    except Exception:  # a bug: its traceback may quote a provider's answer, so it is masked too
        traceback.print_exc(file=err)
        raise SystemExit(EXIT_FAILED) from None
    finally:
        root.removeHandler(handler)
        sys.stdout, sys.stderr = real_out, real_err
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
            out.release()
        with contextlib.suppress(OSError, ValueError):
            err.release()
