"""The Evaluate tab's charts: pass rate (against the baseline when there is one), latency and cost per
model, drawn on the server as SVG (`llmtool.evaluation.plots`) and shown in a gr.Markdown.

    charts_markdown(report, comparison)    # the three charts, ready for the page
    clock = ChartClock()                   # while it runs: redraw at most every CHART_INTERVAL seconds
    if clock.due(loop.time()): ...

Why a Markdown and not gr.HTML: Gradio 6 renders gr.HTML through a template it evaluates with
`Function(…)`, which our Content-Security-Policy (no `unsafe-eval`) refuses: it shows an error
instead of the chart. A Markdown component keeps inline SVG (sanitized: `role` and `viewBox` are
dropped, the text, `<title>` and `<desc>` stay). The SVG is one HTML block for Markdown: its lines
are kept without a blank one, so no text inside it is read as Markdown.
"""

from __future__ import annotations

import re

from llmtool.evaluation.baseline import Comparison
from llmtool.evaluation.plots import report_charts
from llmtool.evaluation.results import EvalReport

CHART_INTERVAL = 0.5  # seconds: at most two redraws a second while an evaluation runs
ORDER = ("pass_rate", "latency", "cost")
_BLANK_LINES = re.compile(r"\n\s*\n")


def charts_markdown(report: EvalReport, comparison: Comparison | None = None) -> str:
    """The pass rate, latency and cost charts of `report` (so far), one after the other."""
    charts = report_charts(report, comparison)
    return "\n".join(_BLANK_LINES.sub("\n", charts[name].strip()) for name in ORDER)


class ChartClock:
    """Whether the charts may be drawn again: the first time, then once per `interval`."""

    def __init__(self, interval: float = CHART_INTERVAL) -> None:
        self.interval = interval
        self.last: float | None = None

    def due(self, now: float) -> bool:
        if self.last is not None and now - self.last < self.interval:
            return False
        self.last = now
        return True
