"""`llmtool loopback …`: the offline fake provider server (its own flags, see llmtool.loopback.cli)."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:
    loopback = commands.add_parser("loopback", help="run the offline fake provider server", add_help=False)
    loopback.add_argument("rest", nargs=argparse.REMAINDER)
    loopback.set_defaults(handler=lambda args: _loopback_main(args.rest))


def _loopback_main(argv: list[str]) -> int:
    from llmtool.loopback.cli import main  # the server's modules load only for this command

    return main(argv)
