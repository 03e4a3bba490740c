"""Repeats: each case run k times per model, aggregated per cell into a pass rate and a spread.

    cells = aggregate_repeats(results)          # results: every CaseResult, k per (case, model), any order
    cell.pass_rate, cell.verdict                # 0.6, "flaky" (some passed, some did not)
    cell.latency.median, cell.latency.max       # Spread: min / median / max / mean of what was measured
    cell.failures                               # {"expected to contain 'x'": 2}: why, how often
    cell.cell()                                 # '3/5 ⚠ 1.10–1.92 s': a table cell

Pure: nothing is run or stored here. Cells come out in the order their first result came in.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from llmtool.evaluation.results import CaseResult

RepeatVerdict = Literal["passed", "failed", "flaky"]
_MARK = {"passed": "✓", "failed": "✗", "flaky": "⚠"}


class Spread(BaseModel):
    """How a measure varied over the runs that measured it."""

    model_config = ConfigDict(frozen=True)

    count: int
    min: float
    median: float
    max: float
    mean: float

    @classmethod
    def of(cls, values: Iterable[float | int | None]) -> Spread | None:
        """The spread of the values given (None ones skipped); None when there are none."""
        known = sorted(float(v) for v in values if v is not None)
        if not known:
            return None
        return cls(count=len(known), min=known[0], median=statistics.median(known), max=known[-1],
                   mean=statistics.fmean(known))


class RepeatedCell(BaseModel):
    model_config = ConfigDict(frozen=True)

    case_id: str
    model: str
    runs: int
    passed: int
    errors: int = Field(description="Runs that failed to produce an answer (provider, timeout, render).")
    latency: Spread | None = None
    time_to_first_token: Spread | None = None
    output_tokens: Spread | None = None
    cost_usd: Spread | None = Field(None, description="Of the runs whose cost is known.")
    cost_total: float | None = Field(None, description="All runs together; None when any cost is unknown.")
    failures: dict[str, int] = Field(default_factory=dict, description="Each reason and how many runs gave it.")
    run_ids: list[str] = Field(default_factory=list)

    @property
    def pass_rate(self) -> float:
        return self.passed / self.runs if self.runs else 0.0

    @property
    def verdict(self) -> RepeatVerdict:
        if self.passed == self.runs:
            return "passed"
        return "failed" if self.passed == 0 else "flaky"

    @property
    def flaky(self) -> bool:
        return self.verdict == "flaky"

    def passes(self, threshold: float = 1.0) -> bool:
        """Whether at least `threshold` of the runs passed (1.0: all of them)."""
        return self.runs > 0 and self.pass_rate >= threshold

    def cell(self) -> str:
        """'5/5 ✓ 1.02–1.31 s', '2/5 ⚠ expected to contain 'x'' — for a table cell."""
        head = f"{self.passed}/{self.runs} {_MARK[self.verdict]}"
        if self.verdict != "passed" and self.failures:
            return f"{head} {next(iter(self.failures))}"
        if self.latency is not None:
            low, high = self.latency.min, self.latency.max
            return f"{head} {low:.2f} s" if low == high else f"{head} {low:.2f}–{high:.2f} s"
        return head


def aggregate_repeats(results: Iterable[CaseResult]) -> list[RepeatedCell]:
    """One RepeatedCell per (case, model) of `results`, in the order each first appears."""
    groups: dict[tuple[str, str], list[CaseResult]] = {}
    for result in results:
        groups.setdefault((result.case_id, result.model), []).append(result)
    return [_cell(case_id, model, runs) for (case_id, model), runs in groups.items()]


def pass_rates(cells: Sequence[RepeatedCell]) -> dict[str, float]:
    """Per model, the share of all its runs that passed (for a plot of pass rate per model)."""
    totals: dict[str, list[int]] = {}
    for cell in cells:
        passed, runs = totals.setdefault(cell.model, [0, 0])
        totals[cell.model] = [passed + cell.passed, runs + cell.runs]
    return {model: passed / runs if runs else 0.0 for model, (passed, runs) in totals.items()}


def _cell(case_id: str, model: str, runs: list[CaseResult]) -> RepeatedCell:
    costs = [r.cost_usd for r in runs]
    reasons = Counter(r.reason() for r in runs if not r.passed)
    return RepeatedCell(
        case_id=case_id, model=model, runs=len(runs), passed=sum(r.passed for r in runs),
        errors=sum(r.status == "error" for r in runs),
        latency=Spread.of(r.latency for r in runs),
        time_to_first_token=Spread.of(r.time_to_first_token for r in runs),
        output_tokens=Spread.of(r.output_tokens for r in runs),
        cost_usd=Spread.of(costs),
        cost_total=None if any(c is None for c in costs) else sum(c or 0.0 for c in costs),
        failures=dict(sorted(reasons.items(), key=lambda item: (-item[1], item[0]))),
        run_ids=[r.run_id for r in runs if r.run_id is not None],
    )
