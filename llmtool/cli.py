"""The `llmtool` command: subcommands registered from the modules that own them."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence

from llmtool.console import EXIT_USAGE, stream_to_console
from llmtool.errors import UsageError
from llmtool.service import LLMService
from llmtool.settings import load_settings

Register = Callable[[argparse._SubParsersAction], None]


def _add_chat(commands: argparse._SubParsersAction) -> None:
    chat = commands.add_parser("chat", help="stream one answer to stdout")
    chat.add_argument("prompt", help="what to ask; '-' reads it from stdin")
    chat.add_argument("-m", "--model", help="PROVIDER:MODEL (default: first usable model)")
    chat.add_argument("-s", "--system", help="system prompt")
    chat.add_argument("-t", "--temperature", type=float)
    chat.add_argument("--max-tokens", type=int, dest="max_output_tokens")
    chat.set_defaults(handler=_chat)


def _chat(args: argparse.Namespace) -> int:
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    request = {
        "model": args.model,
        "prompt": prompt,
        "system": args.system,
        "temperature": args.temperature,
        "max_output_tokens": args.max_output_tokens,
    }
    return run_with_service(args, lambda service: stream_to_console(service, request))


def _add_models(commands: argparse._SubParsersAction) -> None:
    models = commands.add_parser("models", help="list usable models and their prices")
    models.set_defaults(handler=_models)


def _models(args: argparse.Namespace) -> int:
    service = LLMService(load_settings(args.config))
    for model in service.models():
        price = (
            f"${model.input_price:g} in / ${model.output_price:g} out per Mtok"
            if model.input_price is not None and model.output_price is not None
            else "price unknown"
        )
        print(f"{model.id:32} {price}")
    return 0


def _add_loopback(commands: argparse._SubParsersAction) -> None:
    loopback = commands.add_parser(
        "loopback", help="run the offline fake provider server", add_help=False
    )
    loopback.add_argument("rest", nargs=argparse.REMAINDER)
    loopback.set_defaults(handler=lambda args: _loopback_main(args.rest))


def _loopback_main(argv: list[str]) -> int:
    from llmtool.loopback.cli import main

    return main(argv)


def run_with_service(args: argparse.Namespace, body: Callable[[LLMService], Awaitable[int]]) -> int:
    """Build the service from --config, run `body(service)` on a fresh loop, close everything."""

    async def main() -> int:
        service = LLMService(load_settings(args.config))
        try:
            return await body(service)
        finally:
            await service.aclose()

    return asyncio.run(main())


COMMANDS: list[Register] = [_add_chat, _add_models, _add_loopback]


def register_optional_commands() -> None:
    """Commands of modules that may not be present in every build (templates, evaluation)."""
    try:
        from llmtool.templates.commands import register
    except ImportError:
        return
    if register not in COMMANDS:
        COMMANDS.append(register)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmtool", description="Stream LLM answers; stop them; stay reliable."
    )
    parser.add_argument("--config", help="TOML config file (default: $LLMTOOL_CONFIG or ./llmtool.toml)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    register_optional_commands()
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
