"""`llmtool chat PROMPT` (stream one answer to stdout) and `llmtool models` (each provider's models).

    llmtool chat -m demo:thinker --reasoning-effort low "Plan a picnic"   # thoughts dimmed on stderr
    llmtool chat -m openai:gpt-5.1 --no-reasoning "…" > answer.md         # the answer alone on stdout
    llmtool models                                                        # live lists, else configured
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from llmtool.catalog import ModelInfo
from llmtool.console import EXIT_OK, run_with_service, stream_to_console
from llmtool.providers.base import REASONING_EFFORTS
from llmtool.service import LLMService
from llmtool.settings import load_settings


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options a run takes beside model, temperature and max tokens (chat and run share them)."""
    parser.add_argument(
        "--reasoning-effort", choices=REASONING_EFFORTS, metavar="EFFORT",
        help="how hard a reasoning model thinks: " + ", ".join(REASONING_EFFORTS) + " (each model takes "
        "some of them; default: the model's)",
    )
    parser.add_argument("--no-reasoning", action="store_true",
                        help="do not print the model's thoughts on stderr (it may still think)")
    parser.add_argument("--cache-prompt", action=argparse.BooleanOptionalAction, default=None,
                        help="Anthropic: cache the system prompt and long user content (default: the setting)")


def register(commands: argparse._SubParsersAction) -> None:
    chat = commands.add_parser("chat", help="stream one answer to stdout")
    chat.add_argument("prompt", help="what to ask; '-' reads it from stdin")
    chat.add_argument("-m", "--model", help="PROVIDER:MODEL, any model of a configured provider (default: the "
                                            "first usable model)")
    chat.add_argument("-s", "--system", help="system prompt")
    chat.add_argument("-t", "--temperature", type=float)
    chat.add_argument("--max-tokens", type=int, dest="max_output_tokens")
    add_run_options(chat)
    chat.set_defaults(handler=_chat)

    models = commands.add_parser("models", help="list each provider's models (live where it can list them)")
    models.add_argument("--configured", action="store_true",
                        help="only the configured models: ask no provider for its list")
    models.set_defaults(handler=_models)


def _chat(args: argparse.Namespace) -> int:
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    request = {
        "model": args.model,
        "prompt": prompt,
        "system": args.system,
        "temperature": args.temperature,
        "max_output_tokens": args.max_output_tokens,
        "reasoning_effort": args.reasoning_effort,
        "cache_prompt": args.cache_prompt,
    }
    return run_with_service(
        args, lambda service: stream_to_console(service, request, show_reasoning=not args.no_reasoning)
    )


def describe_model(model: ModelInfo) -> str:
    """'demo:thinker   $0 in / $0 out per Mtok · reasoning: none, low, medium, high'."""
    if model.input_price is not None and model.output_price is not None:
        price = f"${model.input_price:g} in / ${model.output_price:g} out per Mtok"
    else:
        price = "price unknown"
    parts = [price]
    if model.efforts:
        parts.append("reasoning: " + ", ".join(model.efforts))
    if model.display_name and model.display_name != model.name:
        parts.append(model.display_name)
    return f"{model.id:32} {' · '.join(parts)}"


def _models(args: argparse.Namespace) -> int:
    service = LLMService(load_settings(args.config))  # no run store: nothing runs
    if args.configured:
        for model in service.models():
            print(describe_model(model))
        return EXIT_OK

    async def main() -> int:
        try:
            lists = await service.model_lists.all()
        finally:
            await service.aclose()
        for listed in lists:
            where = "as the provider lists them" if listed.live else "configured"
            problem = f"; its list could not be read: {service.redactor(listed.problem)}" if listed.problem else ""
            print(f"· {listed.provider}: {len(listed.models)} models, {where}{problem}", file=sys.stderr, flush=True)
            for model in listed.models:
                print(describe_model(model), flush=True)
        return EXIT_OK

    return asyncio.run(main())
