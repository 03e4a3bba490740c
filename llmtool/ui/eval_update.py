"""One update of the Evaluate tab: which outputs change and to what, in the order of `OUTPUTS`.

    update = EvalUpdate(progress="Running · 3/40 done · 0 failed · 1.2 s", table=...)
    return update.outputs()              # a tuple for EvalView.outputs: None leaves an output as it is
    update = shown(report, comparison, dataset_name="prompts/datasets/x.csv", failures_only=False)

`shown` is what every path that puts an evaluation on the page (a run, a stored one picked or
linked, a baseline picked) shares: the summary, the table (marked against the baseline), the charts
and the comparison with the template versions' diff.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from llmtool.evaluation.baseline import Comparison
from llmtool.evaluation.results import EvalReport
from llmtool.ui.eval_charts import charts_markdown
from llmtool.ui.eval_compare import changes, comparison_markdown, diff_markdown
from llmtool.ui.eval_detail import PICK_A_CELL, CellDetail
from llmtool.ui.eval_links import link_markdown
from llmtool.ui.eval_table import matrix, summary_markdown

# The page's outputs, in order (EvalView.outputs); API callers get them without states and buttons.
OUTPUTS = ("progress", "summary", "table", "csv", "jsonl", "report", "eval_id", "run", "stop", "charts", "link",
           "comparison", "diff", "evaluation", "baseline", "compared", "detail_title", "detail_request",
           "detail_answer", "detail_checks")
NO_COMPARISON = "_Pick a baseline to see what changed._"


@dataclass
class EvalUpdate:
    """One page update; None leaves that output as it is."""

    progress: str | None = None
    summary: str | None = None
    table: dict | None = None
    exports: tuple[Path, Path] | None = None
    hide_exports: bool = False
    report: EvalReport | None = None
    eval_id: str | None = None
    running: bool | None = None
    charts: str | None = None
    link: str | None = None
    comparison: str | None = None
    diff: str | None = None
    evaluation: Any = None  # a gr.update of the Evaluation picker
    baseline: Any = None  # a gr.update of the Baseline picker
    compared: Comparison | None = None
    forget_comparison: bool = False  # set the comparison state to None
    detail: CellDetail | None = None

    def outputs(self) -> tuple[Any, ...]:
        def value(v: Any) -> Any:
            return gr.skip() if v is None else v

        downloads: tuple[Any, Any] = (gr.skip(), gr.skip())
        if self.exports is not None:
            csv_file, jsonl_file = self.exports
            downloads = (gr.update(value=str(csv_file), visible=True), gr.update(value=str(jsonl_file), visible=True))
        elif self.hide_exports:
            downloads = (gr.update(visible=False), gr.update(visible=False))
        controls: tuple[Any, Any] = (gr.skip(), gr.skip())
        if self.running is not None:
            controls = (gr.update(visible=not self.running), gr.update(visible=self.running))
        compared = None if self.forget_comparison else value(self.compared)
        detail: tuple[Any, ...] = (gr.skip(),) * 4
        if self.detail is not None:
            d = self.detail
            detail = (d.title, d.request, d.answer, d.checks)
        return (value(self.progress), value(self.summary), value(self.table), *downloads,
                value(self.report), value(self.eval_id), *controls, value(self.charts), value(self.link),
                value(self.comparison), value(self.diff), value(self.evaluation), value(self.baseline), compared,
                *detail)


def table_value(report: EvalReport, comparison: Comparison | None, failures_only: bool, changed_only: bool,
                running: bool) -> dict:
    headers, rows = matrix(report, failures_only=failures_only, running=running, changes=changes(comparison),
                           changed_only=changed_only)
    return {"headers": headers, "data": rows}


def shown(report: EvalReport, comparison: Comparison | None, *, dataset_name: str, failures_only: bool = False,
          changed_only: bool = False, running: bool = False, charts: bool = True, redact: Any = None,
          why_no_comparison: str | None = None) -> EvalUpdate:
    """Summary, table, charts, link and comparison of `report` against `comparison`'s baseline.
    `charts` False leaves the charts as they are (they are redrawn at most twice a second);
    `why_no_comparison`: the sentence shown when there is no comparison (None: leave it as it is)."""
    def same(text: str) -> str:
        return text

    redact = redact or same
    update = EvalUpdate(
        summary=redact(summary_markdown(report, dataset_name)),
        table=table_value(report, comparison, failures_only, changed_only, running),
        report=report,
        charts=charts_markdown(report, comparison) if charts else None,
        link=link_markdown(report.evaluation_id) if report.evaluation_id else "",
        compared=comparison,
        forget_comparison=comparison is None,
    )
    if comparison is not None and not running:
        update.comparison = comparison_markdown(comparison, redact)
        update.diff = diff_markdown(comparison, redact)
    elif why_no_comparison is not None:
        update.comparison, update.diff = why_no_comparison, ""
    return update


def cleared_detail() -> CellDetail:
    return CellDetail(title=PICK_A_CELL)
