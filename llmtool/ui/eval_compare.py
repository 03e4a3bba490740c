"""An evaluation against its baseline, as the Evaluate tab shows it. Pure functions, no Gradio.

    comparison_markdown(comparison)     # what changed: counts, per model pass rate and deltas, the cells
    diff_markdown(comparison)           # the two template versions' unified diff in a code block
    baseline_choices(records, current_id, pinned)   # the Baseline picker: (label, value) newest first
    evaluation_choices(records)          # the Evaluation picker
    running_comparison(report, record, cells)   # a running evaluation against its baseline's cells

Every text that comes from a user (case ids, model names, reasons, template content) is escaped or
put in a code block: shown, never rendered.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Sequence
from datetime import datetime

from llmtool.evaluation.baseline import Cell, CellComparison, Comparison, compare
from llmtool.evaluation.results import CaseResult, EvalReport
from llmtool.store import EvaluationRecord
from llmtool.ui.eval_links import evaluation_link
from llmtool.ui.status import escape_markdown

LAST = "last"
NONE = "none"
NO_COMPARISON_WANTED = "_No baseline picked: pick one to see what changed._"
MAX_CELLS_LISTED = 40
MARKS = {"regressed": "▼ regressed", "fixed": "▲ fixed", "new": "new", "removed": "removed",
         "still_failing": "still failing", "still_passing": "still passing"}
Redact = Callable[[str], str]


def _same(text: str) -> str:
    return text


# -- the pickers ------------------------------------------------------------------------------------
def evaluation_label(record: EvaluationRecord) -> str:
    """'2026-12-01 05:07 · @3cf76e7a6320 · completed · nightly · 6f2a9c01d4e7'."""
    when = datetime.fromtimestamp(record.created_at).strftime("%Y-%m-%d %H:%M")
    parts = [when, f"@{record.template_hash}", record.status]
    if record.repeats > 1:
        parts.append(f"×{record.repeats}")
    if record.name:
        parts.append(record.name)
    return " · ".join([*parts, record.id])


def evaluation_choices(records: Sequence[EvaluationRecord], redact: Redact = _same) -> list[tuple[str, str]]:
    return [(redact(evaluation_label(r)), r.id) for r in records]


def baseline_choices(records: Sequence[EvaluationRecord], current_id: str | None = None, pinned: str | None = None,
                     redact: Redact = _same) -> list[tuple[str, str]]:
    """The Baseline picker: the template's pinned baseline (a name or id) when it has one, "last"
    (the newest completed earlier evaluation), none, then every other stored evaluation."""
    choices = [(redact(f"the template's baseline ({pinned})"), pinned)] if pinned else []
    choices += [("last completed before it", LAST), ("none", NONE)]
    return choices + [(redact(evaluation_label(r)), r.id) for r in records if r.id != current_id]


def default_baseline(records: Sequence[EvaluationRecord], current_id: str | None = None,
                     pinned: str | None = None) -> str:
    """Preselected: the pinned baseline, else "last" when an earlier completed evaluation exists, else none."""
    if pinned:
        return pinned
    others = [r for r in records if r.id != current_id and r.status == "completed"]
    return LAST if others else NONE


# -- a running evaluation -----------------------------------------------------------------------------
def running_comparison(report: EvalReport, baseline: EvaluationRecord, cells: Sequence[Cell]) -> Comparison:
    """The cells finished so far against the baseline's same cells (the others are not "removed"
    yet: they have not run)."""
    current = live_cells(report.results)
    ran = {(c.case_id, c.model) for c in current}
    return compare(current, [c for c in cells if (c.case_id, c.model) in ran], template=report.template,
                   evaluation_id=report.evaluation_id, baseline_id=baseline.id, template_hash=report.template_hash,
                   baseline_template_hash=baseline.template_hash)


def live_cells(results: Sequence[CaseResult]) -> list[Cell]:
    """One baseline `Cell` per (case, model) of `results`, as the store will keep it: passed when
    every run passed; its first run's id, its first failure's reason; medians of the measures (the
    mean for cost, unknown when any run's is)."""
    groups: dict[tuple[str, str], list[CaseResult]] = {}
    for result in results:
        groups.setdefault((result.case_id, result.model), []).append(result)
    cells = []
    for (case_id, model), runs in groups.items():
        failed = [r for r in runs if not r.passed]
        costs = [r.cost_usd for r in runs]
        cells.append(Cell(
            case_id=case_id, model=model, passed=not failed, reason=failed[0].reason() if failed else "",
            run_id=runs[0].run_id, latency=_median([r.latency for r in runs]),
            time_to_first_token=_median([r.time_to_first_token for r in runs]),
            input_tokens=_whole(_median([r.input_tokens for r in runs])),
            output_tokens=_whole(_median([r.output_tokens for r in runs])),
            cost_usd=None if any(c is None for c in costs) else statistics.fmean(c or 0.0 for c in costs),
        ))
    return cells


def changes(comparison: Comparison | None) -> dict[tuple[str, str], str]:
    """(case, model) → its change, for the table's marks and its Changed only filter."""
    if comparison is None:
        return {}
    return {(c.case_id, c.model): c.change for c in comparison.cells}


# -- what it shows ----------------------------------------------------------------------------------
def comparison_markdown(comparison: Comparison, redact: Redact = _same) -> str:
    """Counts of each change, then per model the pass rates and the deltas, then the changed cells."""
    counts = comparison.summary()
    head = "**Compared with**"
    if comparison.baseline_id:
        head += f" [evaluation {comparison.baseline_id}]({evaluation_link(comparison.baseline_id)})"
    if comparison.baseline_template_hash and comparison.baseline_template_hash != comparison.template_hash:
        head += f" · template @{comparison.baseline_template_hash} → @{comparison.template_hash}"
    elif comparison.template_hash:
        head += f" · same template version @{comparison.template_hash}"
    line = " · ".join(f"{MARKS[kind]} {count}" if kind in ("fixed", "regressed") else f"{count} {MARKS[kind]}"
                      for kind, count in counts.items() if count or kind in ("fixed", "regressed"))
    lines = [head, "", f"**{line}**", "", *_model_table(comparison, redact)]
    changed = comparison.rows(changed_only=True)
    if changed:
        changed.sort(key=lambda c: ("regressed", "fixed", "new", "removed").index(c.change))
        lines += ["", "**Changed cells**", ""]
        lines += [f"- {_cell_line(c, redact)}" for c in changed[:MAX_CELLS_LISTED]]
        if len(changed) > MAX_CELLS_LISTED:
            lines.append(f"- … and {len(changed) - MAX_CELLS_LISTED} more (see the table, Changed only)")
    else:
        lines += ["", "No verdict changed."]
    return "\n".join(lines)


def diff_markdown(comparison: Comparison, redact: Redact = _same) -> str:
    """The template versions' unified diff, or why there is none."""
    if not comparison.template_diff:
        return f"_No diff: {escape_markdown(comparison.diff_note or 'the versions are the same')}._"
    text = redact(comparison.template_diff)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return (f"**Template @{comparison.baseline_template_hash} → @{comparison.template_hash}**\n\n"
            f"{fence}diff\n{text.rstrip(chr(10))}\n{fence}")


def _model_table(comparison: Comparison, redact: Redact) -> list[str]:
    """Per model: pass rate before → now, how many cells it fixed (▲) and broke (▼), and the mean
    change in latency, the change in output tokens and in cost over the cells both evaluations ran."""
    models = list(dict.fromkeys(c.model for c in comparison.cells))
    if not models:
        return []
    rates = comparison.pass_rates()
    rows = ["| model | pass rate | ▲ ▼ | Δ latency | Δ tokens out | Δ cost |", "|---|---|---|---|---|---|"]
    for model in models:
        mine = [c for c in comparison.cells if c.model == model]
        before, now = rates.get(model, (None, None))
        fixed, regressed = sum(c.change == "fixed" for c in mine), sum(c.change == "regressed" for c in mine)
        rows.append("| " + " | ".join([
            escape_markdown(redact(model)).replace("|", "\\|"), f"{_percent(before)} → {_percent(now)}",
            f"▲{fixed} ▼{regressed}", *_deltas(mine),
        ]) + " |")
    return rows


def _deltas(cells: Sequence[CellComparison]) -> list[str]:
    """Mean Δ latency, total Δ output tokens, total Δ cost (with how many cells' cost is unknown)."""
    paired = [c for c in cells if c.current is not None and c.baseline is not None]
    latencies = [c.latency_delta for c in paired if c.latency_delta is not None]
    latency = _signed(statistics.fmean(latencies), " s", 2) if latencies else "–"
    outs = [c.output_tokens_delta for c in paired if c.output_tokens_delta is not None]
    tokens = _signed(sum(outs), "", 0) if outs else "–"
    costs = [c.cost_delta for c in paired]
    known = [c for c in costs if c is not None]
    unknown = len(costs) - len(known)
    if not known:
        cost = "unknown" if unknown else "–"
    else:
        cost = _signed(sum(known), "", 6, "$") + (f" ({unknown} unknown)" if unknown else "")
    return [latency, tokens, cost]


def _cell_line(cell: CellComparison, redact: Redact) -> str:
    text = f"{MARKS[cell.change]} · {escape_markdown(redact(cell.case_id))} × {escape_markdown(redact(cell.model))}"
    side = cell.current or cell.baseline
    if cell.change == "fixed" and cell.baseline is not None and cell.baseline.reason:
        text += f" (was: {escape_markdown(redact(cell.baseline.reason))})"
    elif side is not None and not side.passed and side.reason:
        text += f": {escape_markdown(redact(side.reason))}"
    deltas = [d for d in (_signed(cell.latency_delta, " s", 2), _signed(cell.output_tokens_delta, " tok", 0),
                          _signed(cell.cost_delta, "", 6, "$")) if d not in ("", "±0")]
    return text + (f" · Δ {', '.join(deltas)}" if deltas else "")


def _signed(value: float | int | None, unit: str, digits: int, prefix: str = "") -> str:
    if value is None:
        return ""
    if round(value, digits) == 0:
        return "±0"
    sign = "+" if value > 0 else "−"
    return f"{sign}{prefix}{abs(value):.{digits}f}{unit}"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _median(values: Sequence[float | int | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(statistics.median(known)) if known else None


def _whole(value: float | None) -> int | None:
    return None if value is None else round(value)
