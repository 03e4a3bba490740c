"""`llmtool eval TEMPLATE DATASET`: the matrix with a progress bar, a summary, a results file, and
optionally a comparison with a baseline evaluation (the CI gate).

    llmtool eval classify prompts/datasets/classify.csv -m demo:assistant -m openai:gpt-5-mini \\
        --concurrency 8 --repeat 3 --name v2 --baseline last --output results.csv

Exit codes: 0 every cell passed, 1 some failed or errored (so it can gate a prompt change in CI) —
with a baseline (`--baseline last|ID|NAME`, or the template's `baseline:`), 1 only when a cell that
passed in the baseline fails now (a regression), 0 otherwise; 2 bad usage (unknown template, model
or grader, a bad dataset row, a bad output file name or folder, no such baseline); 130 interrupted
(Ctrl-C): the results that finished are still written to --output.
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
from llmtool.evaluation.baseline import BaselineError, Comparison, compare_evaluations, resolve_baseline
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
from llmtool.store import EvaluationRecord, StoreError
from llmtool.templates.loader import in_folder, leads_outside, link_refused
from llmtool.templates.model import EVALUATION_NAME
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
    command.add_argument("-r", "--repeat", type=_positive, default=1, metavar="K",
                         help="run each case K times per model: pass rate and spread per cell (default 1)")
    command.add_argument("--grader", metavar="PROVIDER:MODEL",
                         help="the model grading judge assertions that name none (default: the template's grader)")
    command.add_argument("--name", type=_name, help="call this evaluation NAME, so a later one can use it as baseline")
    command.add_argument("--baseline", metavar="last|ID|NAME", type=_baseline_ref,
                         help="compare with this earlier evaluation and exit 1 only on a regression "
                              "(default: the template's baseline:, if any)")
    command.set_defaults(handler=_eval)


def _name(text: str) -> str:
    if not EVALUATION_NAME.match(text) or text == "last":
        raise argparse.ArgumentTypeError(
            f"must be letters, digits, '.', '-' or '_' (at most 100, and not 'last'), got {text!r}")
    return text


def _baseline_ref(text: str) -> str:
    if not EVALUATION_NAME.match(text):
        raise argparse.ArgumentTypeError(f"must be 'last', an evaluation's id or its name, got {text!r}")
    return text


def _eval(args: argparse.Namespace) -> int:
    _check_output(args)
    settings = load_settings(args.config)
    template = TemplateRegistry(settings.prompts_dir).resolve(args.template)
    prompts = Path(settings.prompts_dir)  # a dataset of the prompts folder stays in it, whatever the template
    if in_folder(Path(args.dataset), prompts) and leads_outside(Path(args.dataset), prompts):
        raise InvalidRequestError(f"{args.dataset}: {link_refused(prompts, 'dataset')}")
    dataset = load_dataset(args.dataset, template)
    baseline_ref: str | None = args.baseline or template.meta.baseline

    async def body(service: LLMService) -> int:
        models = resolve_models(service, template, args.model or ())
        baseline = None if baseline_ref is None else await _find_baseline(service, template, dataset, baseline_ref)
        if baseline is not None:
            print(f"· baseline: evaluation {_called(baseline)}", file=sys.stderr)
        finished: list[CaseResult] = []
        try:
            report = await _run_with_progress(service, template, dataset, models, args, finished.append)
        except asyncio.CancelledError:  # Ctrl-C: keep what finished
            partial = build_report(template, dataset, models, finished, repeats=args.repeat)
            _write_partial(partial, len(dataset.cases) * len(models) * args.repeat, args)
            raise
        _print_report(report)
        if report.evaluation_id is not None:
            called = f" ({report.name})" if report.name else ""
            print(f"· kept as evaluation {report.evaluation_id}{called}", file=sys.stderr)
        for model in models:  # a model without a price: its cost column is unknown, say how to price it
            hint = service.catalog.price_hint(service.catalog.resolve(model))
            if hint is not None:
                print(f"· {hint}", file=sys.stderr)
        if args.output is not None:
            path = report.write(args.output, failures_only=args.failures_only)
            print(f"· results written to {path}", file=sys.stderr)
        if baseline is None:
            return EXIT_OK if report.ok else EXIT_FAILED
        if report.evaluation_id is None or service.store is None:
            raise BaselineError("this evaluation was not kept, so it cannot be compared with its baseline")
        comparison = await compare_evaluations(service.store, report.evaluation_id, baseline.id)
        _print_comparison(comparison)
        return EXIT_FAILED if comparison.regressed else EXIT_OK

    return run_with_service(args, body)


async def _find_baseline(service: LLMService, template: Template, dataset: Dataset, ref: str) -> EvaluationRecord:
    """The baseline `ref` names, found before anything runs: a BaselineError (exit 2) when there is
    none, or it ran another template or dataset."""
    if service.store is None:
        raise BaselineError("comparing with a baseline needs the run store")
    upcoming = EvaluationRecord(id="", template=template.name, template_hash=template.content_hash,
                                dataset=dataset.path.name, dataset_hash=dataset.content_hash, models=[])
    try:
        return await resolve_baseline(service.store, upcoming, ref)
    except StoreError as error:
        raise BaselineError(f"cannot look for the baseline: {error.message}") from None


def _called(record: EvaluationRecord) -> str:
    name = f" ({record.name})" if record.name else ""
    return f"{record.id}{name} @ {record.template_hash}"


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
    options = {"concurrency": args.concurrency, "repeat": args.repeat, "grader": args.grader, "name": args.name}
    if args.no_progress:
        return await run_evaluation(
            service, template, dataset, models, on_progress=lambda step: collect(step.result), **options,
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

        return await run_evaluation(service, template, dataset, models, on_progress=on_progress, **options)


def _print_report(report: EvalReport) -> None:
    # not a terminal (CI logs, a file): wide enough that the table's columns are not cut short
    out = Console(file=sys.stdout, highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 160)
    table = Table(
        title=f"{report.template} @ {report.template_hash} · {report.dataset}",
        title_justify="left", box=box.SIMPLE_HEAD,
    )
    repeated = report.repeats > 1
    table.add_column("model", no_wrap=True)
    columns = ("passed", "failed", "errors", *(("flaky", "latency", "spread") if repeated else ("latency",)),
               "tokens", "cost")
    for column in columns:
        table.add_column(column, justify="right", no_wrap=True)
    for row in report.summary():
        passed = f"{row.passed}/{row.runs or row.cases}" + (f" {row.pass_rate:.0%}" if repeated else "")
        spread = () if not repeated else (f"{row.latency.min:.2f}–{row.latency.max:.2f} s" if row.latency else "–",)
        table.add_row(
            row.model,
            passed,
            str(row.failed),
            str(row.errors),
            *((str(row.flaky),) if repeated else ()),
            f"{row.mean_latency:.2f} s" if row.mean_latency is not None else "–",
            *spread,
            f"{row.input_tokens}→{row.output_tokens}",
            f"${row.cost_usd:.4f}" if row.cost_usd is not None else "–",
        )
    out.print(table)
    if repeated:
        _print_repeats(out, report)
        return
    for result in report.failures():
        out.print(
            f"✗ {result.case_id} (line {result.line}) × {result.model}: {result.status}: {result.reason()}",
            markup=False, soft_wrap=True,
        )


def _print_repeats(out: Console, report: EvalReport) -> None:
    """Each cell whose runs did not all pass: its pass rate, latency spread and reasons."""
    lines = {r.case_id: r.line for r in report.results}
    for cell in report.repeated():
        if cell.verdict == "passed":
            continue
        mark = "⚠" if cell.flaky else "✗"
        spread = f", {cell.latency.min:.2f}–{cell.latency.max:.2f} s" if cell.latency is not None else ""
        reasons = "; ".join(f"{reason} (×{count})" for reason, count in cell.failures.items())
        out.print(f"{mark} {cell.case_id} (line {lines.get(cell.case_id, '?')}) × {cell.model}: "
                  f"{cell.passed}/{cell.runs} passed ({cell.pass_rate:.0%}{spread}): {reasons}",
                  markup=False, soft_wrap=True)


def _print_comparison(comparison: Comparison) -> None:
    """The comparison's lines (fixed, regressed…, with deltas), then the template versions' diff or why
    there is none."""
    out = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    out.print("")
    for line in comparison.report_lines():
        out.print(line, markup=False)
    if comparison.template_diff:
        out.print("", markup=False)
        out.print(comparison.template_diff.rstrip("\n"), markup=False)
    elif comparison.diff_note:
        out.print(f"template: {comparison.diff_note}", markup=False)
