"""`llmtool chat PROMPT` (stream one answer to stdout) and `llmtool models` (usable models, prices)."""

from __future__ import annotations

import argparse
import sys

from llmtool.console import run_with_service, stream_to_console
from llmtool.service import LLMService
from llmtool.settings import load_settings


def register(commands: argparse._SubParsersAction) -> None:
    chat = commands.add_parser("chat", help="stream one answer to stdout")
    chat.add_argument("prompt", help="what to ask; '-' reads it from stdin")
    chat.add_argument("-m", "--model", help="PROVIDER:MODEL (default: first usable model)")
    chat.add_argument("-s", "--system", help="system prompt")
    chat.add_argument("-t", "--temperature", type=float)
    chat.add_argument("--max-tokens", type=int, dest="max_output_tokens")
    chat.set_defaults(handler=_chat)

    models = commands.add_parser("models", help="list usable models and their prices")
    models.set_defaults(handler=_models)


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
