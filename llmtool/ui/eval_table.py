"""An evaluation as the page shows it: progress line, per-model summary, cases × models table.

Pure functions over `EvalReport` (partial while it runs), so every wording is unit-tested:

    progress_line(done=12, total=40, passed=10, elapsed=3.1, state="running")
    # 'Running · 12/40 done · 2 failed · 3.1 s'
    headers, rows = matrix(report, failures_only=False, running=True)
    # ['case', 'demo:assistant'], [['double-charge', '✓ 0.42 s · 271→9 tok · $0.0000'], …]
    matrix(report, changes={("double-charge", "demo:assistant"): "regressed"}, changed_only=True)
    # … '✗ expected to contain 'refund' · 0.42 s · ▼ regressed': against a baseline

With repeats a cell shows its runs: '2/3 ⚠ expected to contain 'x'' (how many passed, why one did
not) or '3/3 ✓ 0.41–0.52 s' (the spread of their latency), and how many are still to come.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Literal

from llmtool.evaluation import CaseResult, EvalReport
from llmtool.evaluation.repeats import aggregate_repeats
from llmtool.ui.status import escape_markdown, seconds
from llmtool.ui.template_fields import template_label

EvalState = Literal["running", "done", "stopped"]
PENDING = "…"
NOT_RUN = "■ not run"
_MARK = {"passed": "✓", "failed": "✗", "error": "!", "stopped": "■"}
_REPEAT_MARK = {"passed": "✓", "failed": "✗", "flaky": "⚠"}
_SHOWN_CHANGES = {"regressed": "▼ regressed", "fixed": "▲ fixed", "new": "new"}


def progress_line(done: int, total: int, passed: int, elapsed: float, state: EvalState) -> str:
    """'Running · 12/40 done · 2 failed · 3.1 s', 'Done · 40/40 · 38 passed · 2 failed · 9.0 s'."""
    failed = done - passed
    head = {"running": "Running", "done": "Done", "stopped": "Stopped"}[state]
    if state == "done" and done == total:
        parts = [head, f"{done}/{total}", f"{passed} passed", f"{failed} failed"]
    else:
        parts = [head, f"{done}/{total} done", f"{failed} failed"]
    return " · ".join([*parts, seconds(elapsed)])


def cell_text(result: CaseResult | None, running: bool = False) -> str:
    """One table cell: pass/fail mark, why it failed, latency, tokens in→out and cost."""
    if result is None:
        return PENDING if running else NOT_RUN
    parts = [] if result.passed else [result.reason()]
    if result.latency is not None:
        parts.append(seconds(result.latency) if result.latency >= 10 else f"{result.latency:.2f} s")
    if result.input_tokens is not None or result.output_tokens is not None:
        parts.append(f"{result.input_tokens or 0}→{result.output_tokens or 0} tok")
    if result.cost_usd is not None:
        parts.append(f"${result.cost_usd:.4f}")
    return f"{_MARK[result.status]} {' · '.join(parts)}".rstrip()


def repeated_text(results: list[CaseResult], repeats: int, running: bool = False) -> str:
    """A cell run several times: '2/3 ⚠ why one failed' or '3/3 ✓ 0.41–0.52 s', and while it runs
    how many runs are still to come."""
    if not results:
        return PENDING if running else NOT_RUN
    cell = aggregate_repeats(results)[0]
    text = f"{cell.passed}/{cell.runs} {_REPEAT_MARK[cell.verdict]}"
    if cell.verdict != "passed" and cell.failures:
        text += f" {next(iter(cell.failures))}"
    elif cell.latency is not None:
        low, high = f"{cell.latency.min:.2f}", f"{cell.latency.max:.2f}"
        text += f" {low} s" if low == high else f" {low}–{high} s"  # as shown: 0.001 and 0.002 are both 0.00
    missing = repeats - len(results)
    if missing > 0:
        text += f" · {missing} more running" if running else f" · {missing} not run"
    return text


def matrix(report: EvalReport, failures_only: bool = False, running: bool = False, *,
           changes: Mapping[tuple[str, str], str] | None = None,
           changed_only: bool = False) -> tuple[list[str], list[list[str]]]:
    """(headers, rows): one row per case, one column per model. `failures_only` keeps the rows with
    a cell that finished without passing (with repeats: any of its runs). `changes` ((case, model) →
    its change against a baseline) marks the cells that were fixed, regressed or are new; with
    `changed_only` only their rows stay."""
    cells: dict[tuple[str, str], list[CaseResult]] = {}
    for result in report.results:
        cells.setdefault((result.case_id, result.model), []).append(result)
    repeats = max([report.repeats, *(len(runs) for runs in cells.values())])
    changes = changes or {}
    rows = []
    for case_id in report.case_ids:
        row = [cells.get((case_id, model), []) for model in report.models]
        if failures_only and not any(not r.passed for runs in row for r in runs):
            continue
        if changed_only and changes and not any(changes.get((case_id, m)) in _SHOWN_CHANGES for m in report.models):
            continue
        texts = [repeated_text(runs, repeats, running) if repeats > 1 else cell_text(runs[0] if runs else None, running)
                 for runs in row]
        marks = [_SHOWN_CHANGES.get(changes.get((case_id, m), ""), "") for m in report.models]
        rows.append([case_id, *(f"{text} · {mark}" if mark and runs else text
                                for text, mark, runs in zip(texts, marks, row, strict=True))])
    return ["case", *report.models], rows


def summary_markdown(report: EvalReport, dataset_name: str) -> str:
    """Which template version over which dataset, then one table row per model."""
    cases, models = len(report.case_ids), len(report.models)
    head = (
        f"**{escape_markdown(template_label(report.template, report.template_hash))}** · "
        f"{escape_markdown(dataset_name)} · {cases} case{'s' if cases != 1 else ''} × "
        f"{models} model{'s' if models != 1 else ''}"
    )
    summaries = report.summary()
    repeated = report.repeats > 1 or any(s.runs > s.cases for s in summaries)
    if repeated:
        head += f" × {report.repeats} runs each"
    lines = [head, "", "| model | passed | failed | errors | mean latency | tokens in→out | cost |"
             + (" flaky cases |" if repeated else ""), "|---|---|---|---|---|---|---|" + ("---|" if repeated else "")]
    for s in summaries:
        latency = f"{s.mean_latency:.2f} s" if s.mean_latency is not None else "–"
        cost = f"${s.cost_usd:.4f}" if s.cost_usd is not None else "unknown"
        passed = f"{s.passed}/{s.runs} runs" if repeated else f"{s.passed}/{s.cases}"
        lines.append(
            f"| {escape_markdown(s.model).replace('|', chr(92) + '|')} | {passed} | {s.failed} | {s.errors} | "
            f"{latency} | {s.input_tokens}→{s.output_tokens} | {cost} |" + (f" {s.flaky} |" if repeated else "")
        )
    return "\n".join(lines)


def dataset_problems_markdown(problems: list[str], shown: str, actual: str) -> str:
    """A dataset that does not fit its template: every problem with its file:line."""
    count = len(problems)
    lines = [f"⚠ The dataset {escape_markdown(shown)} cannot be used ({count} problem{'s' if count != 1 else ''}):"]
    lines += [f"- {escape_markdown(p.replace(actual, shown))}" for p in problems]
    return "\n".join(lines)


def export_stem(report: EvalReport, now: datetime | None = None, unique: str = "") -> str:
    """'classify-3cf76e7a6320-20250301-142501-<unique>', only letters, digits, - and _ (a file name
    of ours); `unique` (the evaluation's id) keeps two evaluations in the same second apart."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", report.template).strip("_") or "results"
    tail = re.sub(r"[^A-Za-z0-9_-]+", "", unique)
    return "-".join(p for p in (name, re.sub(r"[^0-9a-f]", "", report.template_hash), stamp, tail) if p)
