"""`llmtool run` and `llmtool prompts list|check`.

    llmtool run summarise -v text=@notes.txt -v audience=executives --model openai:gpt-5-mini
    llmtool run plan -v goal="a picnic" -m demo:thinker --reasoning-effort low --no-reasoning
    llmtool prompts list
    llmtool prompts check            # CI: non-zero exit when any template or dataset has a problem

Exit codes: 0 ok, 1 the run or check failed, 2 bad usage (unknown template, bad -v, a broken
template, an undeclared variable…), always with a one-line message.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from llmtool.catalog import Catalog
from llmtool.commands.chat import add_run_options
from llmtool.console import EXIT_FAILED, EXIT_OK, run_with_service, stream_to_console
from llmtool.errors import InvalidRequestError
from llmtool.service import LLMService
from llmtool.settings import load_settings
from llmtool.templates.lint import check_prompts
from llmtool.templates.registry import TemplateRegistry


def register(commands: argparse._SubParsersAction) -> None:
    _add_run(commands)
    _add_prompts(commands)


def registry_for(args: argparse.Namespace) -> TemplateRegistry:
    return TemplateRegistry(load_settings(args.config).prompts_dir)


def parse_assignments(items: list[str] | None, stdin: TextIO | None = None) -> dict[str, str]:
    """`-v NAME=VALUE` options as a dict. `NAME=@path` reads a file, `NAME=@-` stdin, `@@` a literal @."""
    values: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InvalidRequestError(
                f"-v {item!r}: write NAME=VALUE (NAME=@file reads the value from a file)"
            )
        if name in values:
            raise InvalidRequestError(f"-v {name}: given twice")
        if value.startswith("@@"):
            value = value[1:]
        elif value == "@-":
            value = (stdin or sys.stdin).read()
        elif value.startswith("@"):
            path = Path(value[1:]).expanduser()
            try:
                value = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or str(exc)
                raise InvalidRequestError(f"-v {name}=@{path}: cannot read the file: {reason}") from None
        values[name] = value
    return values


# -- llmtool run -----------------------------------------------------------------------------
def _add_run(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="run a prompt template and stream the answer")
    run.add_argument("template", help="template name (see `llmtool prompts list`) or a .md file")
    run.add_argument(
        "-v", "--var", action="append", metavar="NAME=VALUE",
        help="a variable's value; NAME=@file reads it from a file, NAME=@- from stdin (repeatable)",
    )
    run.add_argument("-m", "--model", help="PROVIDER:MODEL (default: the template's, else the service's)")
    run.add_argument("-t", "--temperature", type=float)
    run.add_argument("--max-tokens", type=int, dest="max_output_tokens")
    add_run_options(run)  # --reasoning-effort (over the template's), --no-reasoning, --cache-prompt
    run.add_argument("--dry-run", action="store_true", help="print the rendered prompt; call no model")
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    template = registry_for(args).resolve(args.template)
    values = parse_assignments(args.var)
    if args.dry_run:
        rendered = template.render(values)
        if rendered.system:
            print(f"# system\n{rendered.system}\n\n# prompt")
        print(rendered.prompt)
        return EXIT_OK
    request = template.to_run_request(
        values, model=args.model, temperature=args.temperature, max_output_tokens=args.max_output_tokens,
        reasoning_effort=args.reasoning_effort,
    )
    if args.cache_prompt is not None:
        request = request.model_copy(update={"cache_prompt": args.cache_prompt})

    async def body(service: LLMService) -> int:
        service.catalog.resolve(request.model or service.default_model())  # bad model: exit 2 first
        print(f"· template {template.name} @ {template.content_hash}", file=sys.stderr)
        return await stream_to_console(service, request, show_reasoning=not args.no_reasoning)

    return run_with_service(args, body)


# -- llmtool prompts list | check ------------------------------------------------------------
def _add_prompts(commands: argparse._SubParsersAction) -> None:
    prompts = commands.add_parser("prompts", help="list or check the prompt templates")
    actions = prompts.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="the templates, their models and variables").set_defaults(handler=_list)
    actions.add_parser(
        "check", help="load and lint every template and example dataset; exit 1 on problems"
    ).set_defaults(handler=_check)


def _list(args: argparse.Namespace) -> int:
    registry = registry_for(args)
    entries = registry.entries()
    if not entries:
        print(f"no templates in {registry.directory}/", file=sys.stderr)
        return EXIT_OK
    width = max(len(e.name) for e in entries)
    for entry in entries:
        if entry.template is None:
            assert entry.error is not None
            print(f"{entry.name:{width}}  BROKEN  {entry.error.message}")
            continue
        template = entry.template
        variables = ", ".join(
            f"{name}{'*' if spec.is_required else ''} ({spec.type})" for name, spec in template.variables.items()
        )
        model = template.model or "(default model)"
        print(f"{entry.name:{width}}  {model:20}  {template.description}")
        if variables:
            print(f"{'':{width}}  variables: {variables}")
    if registry.problems():
        print("· some templates are broken: `llmtool prompts check` says more", file=sys.stderr)
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    report = check_prompts(settings.prompts_dir, Catalog(settings))
    for problem in report.problems:
        print(problem.message)
    summary = (
        f"{len(report.templates)} templates ok, {len(report.datasets)} datasets ok, "
        f"{len(report.problems)} problems in {settings.prompts_dir}/"
    )
    print(summary if report.problems else f"✓ {summary}", file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_FAILED
