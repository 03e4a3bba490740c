"""Evaluation results: one row per case × model, a per-model summary, a matrix, CSV/JSONL export.

Every row carries the template's name and content hash, so a result file says exactly which version
of the prompt produced it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llmtool.errors import InvalidRequestError

CellStatus = Literal["passed", "failed", "error", "stopped"]
EXPORT_SUFFIXES = (".csv", ".jsonl")
_MARK = {"passed": "✓", "failed": "✗", "error": "!", "stopped": "■"}


class CaseResult(BaseModel):
    """One cell: one case run against one model."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    line: int = Field(description="The case's line in the dataset file.")
    model: str
    status: CellStatus
    problems: list[str] = Field(default_factory=list, description="Failed rules and expectations.")
    error: str | None = Field(None, description="Why the run itself failed (provider, usage).")
    error_kind: str | None = None
    output: str = ""
    latency: float | None = Field(None, description="Seconds, whole run.")
    time_to_first_token: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    run_id: str | None = None
    template: str
    template_hash: str
    values: dict[str, Any] = Field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def reason(self) -> str:
        """Why the cell did not pass, in one line; '' when it passed."""
        return self.error or "; ".join(self.problems)

    def cell(self) -> str:
        """Short text for a table cell: '✓ 1.24 s' or '✗ expected to contain …'."""
        if self.passed:
            return f"{_MARK['passed']} {self.latency:.2f} s" if self.latency is not None else _MARK["passed"]
        return f"{_MARK[self.status]} {self.reason()}"


class ModelSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    model: str
    cases: int
    passed: int
    failed: int
    errors: int
    mean_latency: float | None
    input_tokens: int
    output_tokens: int
    cost_usd: float | None

    @property
    def pass_rate(self) -> float:
        return self.passed / self.cases if self.cases else 0.0


class EvalReport(BaseModel):
    """Everything one evaluation produced; results ordered by case, then model."""

    template: str
    template_hash: str
    dataset: str
    models: list[str]
    case_ids: list[str]
    results: list[CaseResult]
    evaluation_id: str | None = None  # where the run store keeps it, if it does

    @property
    def ok(self) -> bool:
        return all(r.passed for r in self.results)

    def failures(self) -> list[CaseResult]:
        return [r for r in self.results if not r.passed]

    def summary(self) -> list[ModelSummary]:
        rows = []
        for model in self.models:
            mine = [r for r in self.results if r.model == model]
            latencies = [r.latency for r in mine if r.latency is not None]
            costs = [r.cost_usd for r in mine if r.cost_usd is not None]
            rows.append(ModelSummary(
                model=model,
                cases=len(mine),
                passed=sum(r.status == "passed" for r in mine),
                failed=sum(r.status in ("failed", "stopped") for r in mine),
                errors=sum(r.status == "error" for r in mine),
                mean_latency=sum(latencies) / len(latencies) if latencies else None,
                input_tokens=sum(r.input_tokens or 0 for r in mine),
                output_tokens=sum(r.output_tokens or 0 for r in mine),
                cost_usd=sum(costs) if costs else None,
            ))
        return rows

    def matrix(self, failures_only: bool = False) -> tuple[list[str], list[list[str]]]:
        """(headers, rows) of cases × models, for a table widget; failures_only keeps the rows
        with at least one cell that did not pass."""
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
    data["values"] = json.dumps(row.values, ensure_ascii=False)
    return {key: _defused(value) for key, value in data.items()}


def _defused(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value
