"""The `llmtool` command: the subcommands of `llmtool/commands/`, registered from one list."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import cast

from llmtool.commands import chat, evaluation, logs, loopback, serve, templates, usage, users
from llmtool.console import EXIT_USAGE, guarded_output
from llmtool.errors import UsageError

Register = Callable[[argparse._SubParsersAction], None]

# In the order `llmtool --help` lists them: chat, models, loopback, run, prompts, eval, logs, users, usage, serve.
COMMANDS: list[Register] = [chat.register, loopback.register, templates.register, evaluation.register, logs.register,
                            users.register, usage.register, serve.register]


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
    """Run one command; everything it prints (stdout, stderr, log records, argparse's messages,
    a traceback) goes through the redactor of its settings (`console.guarded_output`)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    with guarded_output(_config_flag(argv)):
        parser = build_parser()
        args = parser.parse_args(argv)
        try:
            return int(args.handler(args))
        except UsageError as error:
            print(f"llmtool: {error.message}", file=sys.stderr)
            return EXIT_USAGE
        except KeyboardInterrupt:
            return 130


def _config_flag(argv: Sequence[str]) -> str | None:
    """`--config F` as the full parser will read it (its errors are that parser's to report)."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--config")
    try:
        known, _ = parser.parse_known_args(argv)
    except SystemExit:  # `--config` without a value: the real parser says so
        return None
    return cast(str | None, known.config)


if __name__ == "__main__":
    sys.exit(main())
