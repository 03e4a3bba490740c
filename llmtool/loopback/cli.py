"""Command line: run the loopback server in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import TextIO

from .records import RecordedRequest
from .scenarios import PRESETS, Scenario
from .server import LoopbackServer


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, got {port}")
    return port


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not number > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {value}")
    return number


def build_parser(prog: str = "python -m llmtool.loopback") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Fake OpenAI and Anthropic streaming APIs on a local port, with injectable faults.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8765, help="port, 0 for any free one (default: 8765)")
    parser.add_argument(
        "--scenario",
        choices=list(PRESETS),
        default="normal",
        metavar="PRESET",
        help=f"default scenario when no URL prefix or queue applies; one of: {', '.join(PRESETS)}",
    )
    parser.add_argument(
        "--tokens-per-second",
        type=_positive_float,
        default=None,
        metavar="N",
        help="pace text deltas (default: as fast as possible)",
    )
    return parser


def describe(record: RecordedRequest) -> str:
    """One log line per served request."""
    status = "RST" if record.status is None else str(record.status)
    took = (record.closed_at or record.received_at) - record.received_at
    line = (
        f"#{record.index} {record.method} {record.target} [{record.scenario_kind or '-'}] "
        f"{status} deltas={record.deltas_sent} {took:.3f}s"
    )
    return line + (" (closed by client)" if record.closed_by_client else "")


def _banner(server: LoopbackServer, preset: str) -> str:
    url = server.url
    return "\n".join(
        [
            f"llmtool loopback server on {url} (default scenario: {preset})",
            f"OPENAI_BASE_URL={server.openai_base_url}",
            f"ANTHROPIC_BASE_URL={server.anthropic_base_url}",
            f"Presets, selected by a URL prefix ({url}/scenario/<preset>/v1 for OpenAI, "
            f"{url}/scenario/<preset> for Anthropic):",
            "  " + ", ".join(PRESETS),
            f"Models: GET {url}/v1/models (Anthropic's shape when sent an anthropic-version header)",
            "Control: GET /_loopback/requests, POST /_loopback/enqueue, POST /_loopback/reset, "
            "GET|POST /_loopback/models",
            "Ctrl-C to stop.",
        ]
    )


def serve(
    host: str,
    port: int,
    preset: str = "normal",
    tokens_per_second: float | None = None,
    *,
    stop: threading.Event | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run until Ctrl-C (or ``stop`` is set). Returns the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    server = LoopbackServer(
        host,
        port,
        default=Scenario.preset(preset),
        tokens_per_second=tokens_per_second,
        on_request=lambda record: print(describe(record), file=err, flush=True),
    )
    try:
        server.start()
    except OSError as exc:
        print(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}", file=err)
        return 1
    print(_banner(server, preset), file=out, flush=True)
    stop = stop or threading.Event()
    try:
        stop.wait()
    except KeyboardInterrupt:
        print("stopping", file=err, flush=True)
    finally:
        server.stop()
    return 0


def _sigterm_as_interrupt() -> None:
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None, *, prog: str | None = None) -> int:
    """Parse ``argv`` and serve. Bad arguments return 2 after argparse prints the message."""
    parser = build_parser(prog) if prog else build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else 2
    _sigterm_as_interrupt()
    return serve(args.host, args.port, args.scenario, args.tokens_per_second)
