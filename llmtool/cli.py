"""The `llmtool` command: the subcommands of `llmtool/commands/`, registered from one list."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from llmtool.commands import chat, evaluation, logs, loopback, templates
from llmtool.console import EXIT_USAGE
from llmtool.errors import UsageError

Register = Callable[[argparse._SubParsersAction], None]

# In the order `llmtool --help` lists them: chat, models, loopback, run, prompts, eval, logs.
COMMANDS: list[Register] = [chat.register, loopback.register, templates.register, evaluation.register, logs.register]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmtool", description="Stream LLM answers; stop them; stay reliable."
    )
    parser.add_argument("--config", help="TOML config file (default: $LLMTOOL_CONFIG or ./llmtool.toml)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in COMMANDS:
        register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except UsageError as error:
        print(f"llmtool: {error.message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
