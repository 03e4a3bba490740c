"""Evaluation results: one row per run (case × model × repeat), a per-model summary, a matrix, the
repeats per cell, CSV/JSONL export.

Every row carries the template's name and content hash, so a result file says exactly which version
of the prompt produced it, and each assertion's result (`assertions`: type, label, passed, score,
reason, and for a judge its grader's run and cost).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llmtool.errors import InvalidRequestError
from llmtool.evaluation.assertions import AssertionResult
from llmtool.evaluation.repeats import RepeatedCell, Spread, aggregate_repeats

CellStatus = Literal["passed", "failed", "error", "stopped"]
EXPORT_SUFFIXES = (".csv", ".jsonl")
_MARK = {"passed": "✓", "failed": "✗", "error": "!", "stopped": "■"}


class CaseResult(BaseModel):
    """One run of a cell: one case run against one model (once of its `repeat`s)."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    line: int = Field(description="The case's line in the dataset file.")
    model: str
    status: CellStatus
    problems: list[str] = Field(default_factory=list, description="Failed rules, expectations and assertions.")
    error: str | None = Field(None, description="Why the run itself failed (provider, usage).")
    error_kind: str | None = None
    output: str = ""
    latency: float | None = Field(None, description="Seconds, whole run.")
    time_to_first_token: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = Field(None, description="The run's cost plus its grading's; None: either unknown.")
    run_id: str | None = None
    template: str
    template_hash: str
    values: dict[str, Any] = Field(default_factory=dict)
    # after the older columns, so a results CSV keeps their order
    repeat: int = Field(1, ge=1, description="Which of the case's runs on this model, 1…repeats.")
    assertions: list[AssertionResult] = Field(
        default_factory=list, description="Each expectation and assertion checked, in order, passed or not.")
    grading_cost_usd: float | None = Field(0.0, description="What its judge assertions' runs cost; None: unknown.")

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def failed_assertions(self) -> list[AssertionResult]:
        return [a for a in self.assertions if not a.passed]

    def reason(self) -> str:
        """Why the cell did not pass, in one line; '' when it passed."""
        return self.error or "; ".join(self.problems)

    def cell(self) -> str:
        """Short text for a table cell: '✓ 1.24 s' or '✗ expected to contain …'."""
        if self.passed:
            return f"{_MARK['passed']} {self.latency:.2f} s" if self.latency is not None else _MARK["passed"]
        return f"{_MARK[self.status]} {self.reason()}"


class ModelSummary(BaseModel):
    """One model's results. `passed`, `failed` and `errors` count runs: with repeats, each case ran
    `runs / cases` times."""

    model_config = ConfigDict(frozen=True)

    model: str
    cases: int
    passed: int
    failed: int
    errors: int
    mean_latency: float | None
    input_tokens: int
    output_tokens: int
    cost_usd: float | None = Field(description="Of the runs whose cost is known, grading included.")
    runs: int = 0
    flaky: int = Field(0, description="Cases whose runs did not all agree (some passed, some did not).")
    latency: Spread | None = Field(None, description="How the runs' total times spread.")

    @property
    def pass_rate(self) -> float:
        """The share of its runs that passed."""
        runs = self.runs or self.cases
        return self.passed / runs if runs else 0.0


class EvalReport(BaseModel):
    """Everything one evaluation produced; results ordered by case, then model."""

    template: str
    template_hash: str
    dataset: str
    models: list[str]
    case_ids: list[str]
    results: list[CaseResult]
    evaluation_id: str | None = None  # where the run store keeps it, if it does
    name: str | None = None  # what its author called it (a baseline by name)
    repeats: int = Field(1, ge=1, description="Runs per case and model.")

    @property
    def ok(self) -> bool:
        return all(r.passed for r in self.results)

    def failures(self) -> list[CaseResult]:
        return [r for r in self.results if not r.passed]

    def repeated(self) -> list[RepeatedCell]:
        """Per (case, model), by case then model: its runs' pass rate, spreads and failure reasons."""
        return aggregate_repeats(self.results)

    def summary(self) -> list[ModelSummary]:
        rows = []
        for model in self.models:
            mine = [r for r in self.results if r.model == model]
            latencies = [r.latency for r in mine if r.latency is not None]
            costs = [r.cost_usd for r in mine if r.cost_usd is not None]
            cells = aggregate_repeats(mine)
            rows.append(ModelSummary(
                model=model,
                cases=len(cells),
                runs=len(mine),
                passed=sum(r.status == "passed" for r in mine),
                failed=sum(r.status in ("failed", "stopped") for r in mine),
                errors=sum(r.status == "error" for r in mine),
                flaky=sum(c.flaky for c in cells),
                mean_latency=sum(latencies) / len(latencies) if latencies else None,
                latency=Spread.of(latencies),
                input_tokens=sum(r.input_tokens or 0 for r in mine),
                output_tokens=sum(r.output_tokens or 0 for r in mine),
                cost_usd=sum(costs) if costs else None,
            ))
        return rows

    def matrix(self, failures_only: bool = False) -> tuple[list[str], list[list[str]]]:
        """(headers, rows) of cases × models, for a table widget; failures_only keeps the rows
        with at least one cell that did not pass. With repeats a cell shows its runs
        ('2/3 ⚠ expected to contain …', `RepeatedCell.cell`)."""
        if self.repeats > 1:
            repeated = {(c.case_id, c.model): c for c in self.repeated()}
            rows = []
            for case_id in self.case_ids:
                found = [repeated.get((case_id, m)) for m in self.models]
                if failures_only and all(c is not None and c.verdict == "passed" for c in found):
                    continue
                rows.append([case_id, *(c.cell() if c is not None else "" for c in found)])
            return ["case", *self.models], rows
        cells = {(r.case_id, r.model): r for r in self.results}
        rows = []
        for case_id in self.case_ids:
            row = [cells.get((case_id, m)) for m in self.models]
            if failures_only and all(c is not None and c.passed for c in row):
                continue
            rows.append([case_id, *(c.cell() if c is not None else "" for c in row)])
        return ["case", *self.models], rows

    # -- export --------------------------------------------------------------------------------
    def write(self, path: Path | str, failures_only: bool = False) -> Path:
        """Write the results as CSV or JSONL, chosen by the file's suffix."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in EXPORT_SUFFIXES:
            raise InvalidRequestError(f"results file {path} must end in .csv or .jsonl")
        rows = self.failures() if failures_only else self.results
        try:
            if suffix == ".jsonl":
                with path.open("w", encoding="utf-8") as out:
                    for row in rows:
                        out.write(row.model_dump_json() + "\n")
            else:
                # utf-8-sig: Excel reads a CSV without the byte-order mark as the local code page.
                with path.open("w", encoding="utf-8-sig", newline="") as out:
                    writer = csv.DictWriter(out, fieldnames=list(CaseResult.model_fields))
                    writer.writeheader()
                    for row in rows:
                        writer.writerow(_flat(row))
        except OSError as exc:
            raise InvalidRequestError(f"cannot write {path}: {exc.strerror or exc}") from None
        return path


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _flat(row: CaseResult) -> dict[str, Any]:
    """One CSV row. Text cells that a spreadsheet would run as a formula (a model's answer starting
    with `=HYPERLINK(…)`, say) get a leading `'`: CSV injection. Numbers are left alone."""
    data = row.model_dump()
    data["problems"] = "; ".join(row.problems)
    data["assertions"] = json.dumps(data["assertions"], ensure_ascii=False) if row.assertions else ""
    data["values"] = json.dumps(row.values, ensure_ascii=False)
    return {key: _defused(value) for key, value in data.items()}


def _defused(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value
