"""Charts of an evaluation as small server-rendered SVG: no JavaScript, no plotting library.

    svg = pass_rate_chart({"demo:a": 0.8, "demo:b": 0.5}, baseline={"demo:a": 0.6, "demo:b": 0.5})
    svg = latency_chart({"demo:a": [1.2, 0.9, 1.4], "demo:b": []})     # a box and the points per model
    svg = cost_chart({"demo:a": 0.0123, "demo:b": None})               # None: unknown, said in words
    charts = report_charts(report, comparison)                          # the three, from an EvalReport

Why by hand: Gradio's native plots need `unsafe-eval`, which our Content-Security-Policy forbids,
and matplotlib is not a dependency. Each function returns one `<svg>` element (a string) to put in
a page as is (`gr.HTML`, a Jinja template with `|safe`): every piece of text in it is escaped (model
names come from users), and it uses presentation attributes only — no `style` attribute or element,
which a `style-src 'self'` policy would drop. Accessible: `role="img"`, a `<title>` and a `<desc>`
that says the numbers in words, and text labels on every bar and box. Deterministic: the same data
gives the same bytes. Any number of models (rows grow downwards), none (a sentence says so), and
unknown values (shown as "unknown", never as 0).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape, quoteattr

if TYPE_CHECKING:
    from llmtool.evaluation.baseline import Comparison
    from llmtool.evaluation.results import EvalReport

WIDTH = 640
LABEL_WIDTH = 190  # the model names' column
VALUE_WIDTH = 140  # the numbers' column, right of the bars
ROW = 28
TOP = 40
AXIS = 30
NAME_CHARS = 28
FONT = "system-ui, -apple-system, 'Segoe UI', sans-serif"
CURRENT = "#2563eb"
BASELINE = "#94a3b8"
INK = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
_PLOT_LEFT = LABEL_WIDTH
_PLOT_RIGHT = WIDTH - VALUE_WIDTH


def pass_rate_chart(rates: Mapping[str, float | None], baseline: Mapping[str, float | None] | None = None, *,
                    title: str = "Pass rate per model", current_label: str = "this version",
                    baseline_label: str = "baseline") -> str:
    """Horizontal bars of each model's pass rate (0–1); with `baseline`, grouped bars: the baseline's
    rate above this version's for every model of either."""
    models = list(dict.fromkeys([*rates, *(baseline or {})]))
    series: list[tuple[str, Mapping[str, float | None], str]] = [(current_label, rates, CURRENT)]
    if baseline is not None:
        series.insert(0, (baseline_label, baseline, BASELINE))
    words = "; ".join(
        f"{model}: " + ", ".join(f"{name} {_percent(values.get(model))}" for name, values, _ in series)
        for model in models)
    chart = _Chart(title, words or "no models", len(models), bars=len(series))
    if not models:
        return chart.empty("No results yet.")
    chart.axis([0.0, 0.25, 0.5, 0.75, 1.0], 1.0, lambda v: f"{v:.0%}")
    if baseline is not None:
        chart.legend([(name, colour) for name, _, colour in series])
    for row, model in enumerate(models):
        chart.row_label(row, model)
        for index, (name, values, colour) in enumerate(series):
            value = values.get(model)
            label = _percent(value) if value is not None else "no cells"
            chart.bar(row, index, None if value is None else max(0.0, min(1.0, value)), 1.0, colour,
                      label, f"{model}, {name}: {label}")
    return chart.done()


def latency_chart(latencies: Mapping[str, Sequence[float]], *, title: str = "Latency per model",
                  unit: str = "s") -> str:
    """A box (quartiles, whiskers at min and max) with every measurement as a point, per model."""
    models = list(latencies)
    words = "; ".join(f"{model}: {_box_words(values, unit)}" for model, values in latencies.items())
    chart = _Chart(title, words or "no models", len(models), bars=1)
    if not models:
        return chart.empty("No results yet.")
    top = max((max(values) for values in latencies.values() if values), default=0.0)
    ticks = _ticks(top)
    chart.axis(ticks, ticks[-1], lambda v: f"{v:g} {unit}")
    for row, (model, values) in enumerate(latencies.items()):
        chart.row_label(row, model)
        if values:
            chart.box(row, sorted(values), ticks[-1], f"median {statistics.median(values):.2f} {unit}",
                      f"{model}: {_box_words(values, unit)}")
        else:
            chart.note(row, "no measurements")
    return chart.done()


def cost_chart(costs: Mapping[str, float | None], unknown_runs: Mapping[str, int] | None = None, *,
               title: str = "Cost per model") -> str:
    """Bars of each model's cost in dollars; None is "cost unknown" (no bar), and `unknown_runs`
    counts runs left out of a known sum because their cost is unknown."""
    models = list(costs)
    unknown_runs = unknown_runs or {}

    def label(model: str) -> str:
        cost, missing = costs[model], unknown_runs.get(model, 0)
        if cost is None:
            return "cost unknown"
        return _dollars(cost) + (f" + {missing} unknown" if missing else "")

    words = "; ".join(f"{model}: {label(model)}" for model in models)
    chart = _Chart(title, words or "no models", len(models), bars=1)
    if not models:
        return chart.empty("No results yet.")
    ticks = _ticks(max((c for c in costs.values() if c is not None), default=0.0))
    chart.axis(ticks, ticks[-1], lambda v: f"${v:g}")
    for row, model in enumerate(models):
        chart.row_label(row, model)
        chart.bar(row, 0, costs[model], ticks[-1], CURRENT, label(model), f"{model}: {label(model)}")
    return chart.done()


def report_charts(report: EvalReport, comparison: Comparison | None = None) -> dict[str, str]:
    """{"pass_rate", "latency", "cost"}: the three charts of a report (so far: it may be partial),
    the pass rates against `comparison`'s baseline when given."""
    summaries = report.summary()
    rates: dict[str, float | None] = {s.model: (s.pass_rate if s.cases else None) for s in summaries}
    baseline = None
    if comparison is not None:
        compared = comparison.pass_rates()
        baseline = {model: before for model, (before, _) in compared.items()}
        rates = {**{model: now for model, (_, now) in compared.items() if model not in rates}, **rates}
    latencies = {m: [r.latency for r in report.results if r.model == m and r.latency is not None]
                 for m in report.models}
    costs: dict[str, float | None] = {}
    unknown: dict[str, int] = {}
    for model in report.models:
        mine = [r for r in report.results if r.model == model and r.run_id is not None]
        known = [r.cost_usd for r in mine if r.cost_usd is not None]
        costs[model] = sum(known) if known or not mine else None
        unknown[model] = len(mine) - len(known) if known else 0
    return {
        "pass_rate": pass_rate_chart(rates, baseline),
        "latency": latency_chart(latencies),
        "cost": cost_chart(costs, unknown),
    }


class _Chart:
    """Rows of a horizontal chart: a name column, the plot, a value column."""

    def __init__(self, title: str, words: str, rows: int, bars: int) -> None:
        self.bars = bars
        self.row_height = ROW * bars + 8
        self.height = TOP + max(rows, 1) * self.row_height + AXIS
        self.parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{WIDTH}" height="{self.height}" '
            f'viewBox="0 0 {WIDTH} {self.height}" font-family={quoteattr(FONT)} font-size="12" fill="{INK}">',
            f"<title>{_text(title)}</title>",
            f"<desc>{_text(words)}</desc>",
            f'<text x="0" y="16" font-size="14" font-weight="600">{_text(title)}</text>',
        ]

    def empty(self, sentence: str) -> str:
        self.parts.append(f'<text x="0" y="{TOP + 16}" fill="{MUTED}">{_text(sentence)}</text>')
        return self.done()

    def done(self) -> str:
        return "\n".join([*self.parts, "</svg>"]) + "\n"

    def _x(self, value: float, top: float) -> float:
        share = value / top if top > 0 else 0.0
        return _PLOT_LEFT + max(0.0, min(1.0, share)) * (_PLOT_RIGHT - _PLOT_LEFT)

    def _y(self, row: int) -> float:
        return TOP + row * self.row_height

    def axis(self, ticks: Sequence[float], top: float, show: Callable[[float], str]) -> None:
        bottom = self.height - AXIS
        self.parts.append('<g aria-hidden="true">')
        for tick in ticks:
            x = self._x(tick, top)
            self.parts.append(f'<line x1="{x:.1f}" y1="{TOP - 4}" x2="{x:.1f}" y2="{bottom}" stroke="{GRID}"/>')
            self.parts.append(f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle" fill="{MUTED}">'
                              f"{_text(show(tick))}</text>")
        self.parts.append("</g>")

    def legend(self, entries: Sequence[tuple[str, str]]) -> None:
        x = float(_PLOT_LEFT)
        for name, colour in entries:
            self.parts.append(f'<rect x="{x:.1f}" y="22" width="10" height="10" fill="{colour}"/>')
            self.parts.append(f'<text x="{x + 14:.1f}" y="31">{_text(name)}</text>')
            x += 24 + 7 * len(name)

    def row_label(self, row: int, name: str) -> None:
        shown = name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 1] + "…"
        y = self._y(row) + self.row_height / 2 + 4
        self.parts.append(f'<text x="{LABEL_WIDTH - 8}" y="{y:.1f}" text-anchor="end"><title>{_text(name)}</title>'
                          f"{_text(shown)}</text>")

    def bar(self, row: int, index: int, value: float | None, top: float, colour: str, label: str,
            described: str) -> None:
        y = self._y(row) + (self.row_height - self.bars * ROW) / 2 + index * ROW + 3
        height = ROW - 6
        self.parts.append("<g>")
        self.parts.append(f"<title>{_text(described)}</title>")
        if value is not None:
            width = max(self._x(value, top) - _PLOT_LEFT, 1.0 if value > 0 else 0.0)
            self.parts.append(f'<rect x="{_PLOT_LEFT}" y="{y:.1f}" width="{width:.1f}" height="{height}" '
                              f'fill="{colour}"/>')
        self.parts.append(f'<text x="{_PLOT_RIGHT + 6}" y="{y + height / 2 + 4:.1f}"'
                          f'{"" if value is not None else f" fill={quoteattr(MUTED)}"}>{_text(label)}</text>')
        self.parts.append("</g>")

    def box(self, row: int, values: Sequence[float], top: float, label: str, described: str) -> None:
        middle = self._y(row) + self.row_height / 2
        low, high = values[0], values[-1]
        q1, median, q3 = _quartiles(values)
        x = [self._x(v, top) for v in (low, q1, median, q3, high)]
        self.parts.append("<g>")
        self.parts.append(f"<title>{_text(described)}</title>")
        self.parts.append(f'<line x1="{x[0]:.1f}" y1="{middle:.1f}" x2="{x[4]:.1f}" y2="{middle:.1f}" '
                          f'stroke="{INK}"/>')
        for end in (x[0], x[4]):
            self.parts.append(f'<line x1="{end:.1f}" y1="{middle - 6:.1f}" x2="{end:.1f}" y2="{middle + 6:.1f}" '
                              f'stroke="{INK}"/>')
        self.parts.append(f'<rect x="{x[1]:.1f}" y="{middle - 9:.1f}" width="{max(x[3] - x[1], 1.0):.1f}" '
                          f'height="18" fill="#dbeafe" stroke="{CURRENT}"/>')
        self.parts.append(f'<line x1="{x[2]:.1f}" y1="{middle - 9:.1f}" x2="{x[2]:.1f}" y2="{middle + 9:.1f}" '
                          f'stroke="{CURRENT}" stroke-width="2"/>')
        for value in values:
            self.parts.append(f'<circle cx="{self._x(value, top):.1f}" cy="{middle:.1f}" r="2.5" '
                              f'fill="{INK}" fill-opacity="0.55"/>')
        self.parts.append(f'<text x="{_PLOT_RIGHT + 6}" y="{middle + 4:.1f}">{_text(label)}</text>')
        self.parts.append("</g>")

    def note(self, row: int, sentence: str) -> None:
        y = self._y(row) + self.row_height / 2 + 4
        self.parts.append(f'<text x="{_PLOT_LEFT + 4}" y="{y:.1f}" fill="{MUTED}">{_text(sentence)}</text>')


def _quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, median, q3


def _ticks(top: float) -> list[float]:
    """0 and nice steps (1, 2, 2.5 or 5 × 10ⁿ) up to at least `top`: 4 to 6 of them."""
    if not math.isfinite(top) or top <= 0:
        return [0.0, 0.25, 0.5, 0.75, 1.0]
    raw = top / 4
    power = 10 ** math.floor(math.log10(raw))
    step = next(power * m for m in (1, 2, 2.5, 5, 10) if power * m >= raw)
    count = math.ceil(top / step - 1e-9)
    return [round(step * i, 12) for i in range(count + 1)]


def _box_words(values: Sequence[float], unit: str) -> str:
    if not values:
        return "no measurements"
    ordered = sorted(values)
    return (f"{len(ordered)} runs, min {ordered[0]:.2f} {unit}, median {statistics.median(ordered):.2f} {unit}, "
            f"max {ordered[-1]:.2f} {unit}")


def _percent(value: float | None) -> str:
    return "no cells" if value is None else f"{value:.0%}"


def _dollars(value: float) -> str:
    if value == 0:
        return "$0"
    if value >= 1:
        return f"${value:,.2f}"
    if value >= 0.000_001:
        return "$" + f"{value:.6f}".rstrip("0")
    return "< $0.000001"


def _text(value: str) -> str:
    """Text escaped for XML, with the characters XML 1.0 cannot hold at all replaced."""
    cleaned = "".join(c if c in "\t\n\r" or (" " <= c <= "\ud7ff") or ("\ue000" <= c <= "\ufffd")
                      or c >= "\U00010000" else "\ufffd" for c in value)
    return escape(cleaned)
