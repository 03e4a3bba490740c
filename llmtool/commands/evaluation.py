"""`llmtool eval TEMPLATE DATASET`: the matrix with a progress bar, a summary, a results file.

    llmtool eval classify prompts/datasets/classify.csv -m demo:assistant -m openai:gpt-5-mini \\
        --concurrency 8 --output results.csv

Exit codes: 0 every cell passed, 1 some failed or errored (so it can gate a prompt change in CI),
2 bad usage (unknown template or model, a bad dataset row, a bad output file name or folder),
130 interrupted (Ctrl-C): the results that finished are still written to --output.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from llmtool.console import EXIT_FAILED, EXIT_OK, run_with_service
from llmtool.errors import InvalidRequestError
from llmtool.evaluation.dataset import Dataset, load_dataset
from llmtool.evaluation.results import EXPORT_SUFFIXES, CaseResult, EvalReport
from llmtool.evaluation.runner import (
    DEFAULT_CONCURRENCY,
    EvalProgress,
    build_report,
    resolve_models,
    run_evaluation,
)
from llmtool.service import LLMService
from llmtool.settings import load_settings
from llmtool.templates.loader import in_folder, leads_outside, link_refused
from llmtool.templates.registry import TemplateRegistry
from llmtool.templates.template import Template


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def register(commands: argparse._SubParsersAction) -> None:
    command = commands.add_parser(
        "eval", help="run a template over a dataset (CSV/JSONL) × models; exit 1 if any case fails"
    )
    command.add_argument("template", help="template name or .md file")
    command.add_argument("dataset", help="CSV or JSONL file: one case per row")
    command.add_argument(
        "-m", "--model", action="append", metavar="PROVIDER:MODEL",
        help="a model to evaluate (repeatable; default: the template's model)",
    )
    command.add_argument("-c", "--concurrency", type=_positive, default=DEFAULT_CONCURRENCY,
                         help=f"runs at once (default {DEFAULT_CONCURRENCY})")
    command.add_argument("-o", "--output", type=Path, help="write every result to a .csv or .jsonl file")
    command.add_argument("--failures-only", action="store_true",
                         help="write only the cells that did not pass to the --output file")
    command.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    command.set_defaults(handler=_eval)


def _eval(args: argparse.Namespace) -> int:
    _check_output(args)
    settings = load_settings(args.config)
    template = TemplateRegistry(settings.prompts_dir).resolve(args.template)
    prompts = Path(settings.prompts_dir)  # a dataset of the prompts folder stays in it, whatever the template
    if in_folder(Path(args.dataset), prompts) and leads_outside(Path(args.dataset), prompts):
        raise InvalidRequestError(f"{args.dataset}: {link_refused(prompts, 'dataset')}")
    dataset = load_dataset(args.dataset, template)

    async def body(service: LLMService) -> int:
        models = resolve_models(service, template, args.model or ())
        finished: list[CaseResult] = []
        try:
            report = await _run_with_progress(service, template, dataset, models, args, finished.append)
        except asyncio.CancelledError:  # Ctrl-C: keep what finished
            _write_partial(build_report(template, dataset, models, finished), len(dataset.cases) * len(models), args)
            raise
        _print_report(report)
        for model in models:  # a model without a price: its cost column is unknown, say how to price it
            hint = service.catalog.price_hint(service.catalog.resolve(model))
            if hint is not None:
                print(f"· {hint}", file=sys.stderr)
        if args.output is not None:
            path = report.write(args.output, failures_only=args.failures_only)
            print(f"· results written to {path}", file=sys.stderr)
        return EXIT_OK if report.ok else EXIT_FAILED

    return run_with_service(args, body)


def _check_output(args: argparse.Namespace) -> None:
    """Refuse a results file that cannot be written before anything runs (exit 2)."""
    output: Path | None = args.output
    if output is None:
        if args.failures_only:
            raise InvalidRequestError(
                "--failures-only applies to the results file: give --output PATH too "
                "(the printed list already shows only the cells that did not pass)"
            )
        return
    if output.suffix.lower() not in EXPORT_SUFFIXES:
        raise InvalidRequestError(f"--output {output} must end in .csv or .jsonl")
    folder = output.parent
    if not folder.is_dir():
        raise InvalidRequestError(f"--output {output}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InvalidRequestError(f"--output {output}: the folder {folder} is not writable")
    if output.is_dir():
        raise InvalidRequestError(f"--output {output} is a folder: give a file name")
    if output.exists() and not os.access(output, os.W_OK):
        raise InvalidRequestError(f"--output {output}: the file is not writable")
    dataset = Path(args.dataset)
    if output.resolve() == dataset.resolve() or (
        output.exists() and dataset.exists() and output.samefile(dataset)
    ):
        raise InvalidRequestError(f"--output {output} is the dataset itself: write the results elsewhere")


def _write_partial(report: EvalReport, total: int, args: argparse.Namespace) -> None:
    done = len(report.results)
    if args.output is None:
        print(f"· interrupted after {done} of {total} results (none written: no --output)", file=sys.stderr)
        return
    try:
        path = report.write(args.output, failures_only=args.failures_only)
    except InvalidRequestError as error:
        print(f"· interrupted after {done} of {total} results; {error.message}", file=sys.stderr)
        return
    print(f"· interrupted: the {done} of {total} results that finished are written to {path}", file=sys.stderr)


async def _run_with_progress(
    service: LLMService,
    template: Template,
    dataset: Dataset,
    models: list[str],
    args: argparse.Namespace,
    collect: Callable[[CaseResult], None],
) -> EvalReport:
    err = Console(file=sys.stderr)
    print(
        f"· {template.name} @ {template.content_hash} · {len(dataset.cases)} cases from {dataset.path}",
        file=sys.stderr,
    )
    if args.no_progress:
        return await run_evaluation(
            service, template, dataset, models, concurrency=args.concurrency,
            on_progress=lambda step: collect(step.result),
        )
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as progress:
        task = progress.add_task("evaluating", total=None, status="")

        def on_progress(step: EvalProgress) -> None:
            collect(step.result)
            failed = step.done - step.passed
            progress.update(
                task, completed=step.done, total=step.total,
                status=f"{step.passed} passed · {failed} failed",
            )

        return await run_evaluation(
            service, template, dataset, models, concurrency=args.concurrency,
            on_progress=on_progress,
        )


def _print_report(report: EvalReport) -> None:
    out = Console(file=sys.stdout, highlight=False, soft_wrap=False)
    table = Table(
        title=f"{report.template} @ {report.template_hash} · {report.dataset}",
        title_justify="left", box=box.SIMPLE_HEAD,
    )
    table.add_column("model", no_wrap=True)
    for column in ("passed", "failed", "errors", "latency", "tokens", "cost"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in report.summary():
        table.add_row(
            row.model,
            f"{row.passed}/{row.cases}",
            str(row.failed),
            str(row.errors),
            f"{row.mean_latency:.2f} s" if row.mean_latency is not None else "–",
            f"{row.input_tokens}→{row.output_tokens}",
            f"${row.cost_usd:.4f}" if row.cost_usd is not None else "–",
        )
    out.print(table)
    for result in report.failures():
        out.print(
            f"✗ {result.case_id} (line {result.line}) × {result.model}: {result.status}: {result.reason()}",
            markup=False,
        )
