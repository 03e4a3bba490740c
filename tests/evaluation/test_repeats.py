"""Repeats: k results per cell → pass rate, verdict (passed / failed / flaky), spreads, failure counts."""

from __future__ import annotations

from typing import Any

import pytest

from llmtool.evaluation.repeats import Spread, aggregate_repeats, pass_rates
from llmtool.evaluation.results import CaseResult


def result(case: str, model: str, status: str = "passed", latency: float | None = 1.0, cost: float | None = 0.01,
           problems: list[str] | None = None, **fields: Any) -> CaseResult:
    return CaseResult(case_id=case, line=2, model=model, status=status, problems=problems or [],  # type: ignore[arg-type]
                      latency=latency, cost_usd=cost, template="t", template_hash="h", **fields)


def test_spread() -> None:
    assert Spread.of([]) is None and Spread.of([None, None]) is None
    spread = Spread.of([3, None, 1, 2, 10])
    assert spread == Spread(count=4, min=1.0, median=2.5, max=10.0, mean=4.0)


def test_cells_aggregate_their_runs() -> None:
    results = [
        result("a", "m1", latency=1.0, output_tokens=10, run_id="r1"),
        result("b", "m1", status="failed", problems=["expected to contain 'x'"], latency=2.0),
        result("a", "m1", latency=3.0, output_tokens=30, run_id="r2"),
        result("a", "m2", status="failed", problems=["expected to contain 'y'"], cost=None),
        result("b", "m1", status="failed", problems=["expected to contain 'x'"], latency=4.0),
        result("a", "m1", status="failed", problems=["too long"], latency=2.0, output_tokens=20, run_id="r3"),
        result("b", "m1", status="error", error="the provider is down", latency=None, cost=None),
        result("a", "m2", latency=0.5),
    ]
    a1, b1, a2 = aggregate_repeats(results)
    assert (a1.case_id, a1.model, a1.runs, a1.passed, a1.errors) == ("a", "m1", 3, 2, 0)
    assert a1.pass_rate == pytest.approx(2 / 3) and a1.verdict == "flaky" and a1.flaky
    assert a1.latency == Spread(count=3, min=1.0, median=2.0, max=3.0, mean=2.0)
    assert a1.output_tokens is not None and a1.output_tokens.median == 20
    assert a1.cost_total == pytest.approx(0.03) and a1.failures == {"too long": 1}
    assert a1.run_ids == ["r1", "r2", "r3"]
    assert a1.cell() == "2/3 ⚠ too long"
    assert a1.passes(0.6) and not a1.passes()

    assert (b1.runs, b1.passed, b1.errors, b1.verdict) == (3, 0, 1, "failed")
    assert b1.failures == {"expected to contain 'x'": 2, "the provider is down": 1}  # most frequent first
    assert b1.cost_total is None  # one run's cost is unknown
    assert b1.cost_usd is not None and b1.cost_usd.count == 2
    assert b1.latency is not None and b1.latency.count == 2

    assert (a2.verdict, a2.cost_total) == ("flaky", None)
    assert pass_rates([a1, b1, a2]) == {"m1": pytest.approx(2 / 6), "m2": 0.5}


def test_all_passed_and_the_table_cell() -> None:
    [cell] = aggregate_repeats([result("a", "m", latency=1.0), result("a", "m", latency=1.25)])
    assert cell.verdict == "passed" and cell.cell() == "2/2 ✓ 1.00–1.25 s"
    [single] = aggregate_repeats([result("a", "m", latency=None)])
    assert single.cell() == "1/1 ✓" and single.latency is None
    assert aggregate_repeats([]) == []
