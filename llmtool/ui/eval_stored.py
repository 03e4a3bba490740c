"""Stored evaluations as the Evaluate tab reads them: whose, the pickers' lists, one as a report, and
its comparison with a baseline.

    stored = StoredEvaluations(context)
    scope = stored.scope(login)                          # the login whose evaluations to read; None: all
    records = await stored.listing("classify", "classify.csv", scope)     # newest first
    record, report = await stored.open(evaluation_id, scope)              # or EvaluationNotFound
    comparison = await stored.compare(evaluation_id, "last", scope)       # or a BaselineError
    baseline = await stored.baseline("classify", "classify.csv", "last", scope)   # for a running one

    report = report_of(record, cells)                    # pure: a stored evaluation as an EvalReport

Another user's evaluation is the same EvaluationNotFound as a missing one; a user whose role sees
every run (an admin) reads every user's. Nothing here writes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

from llmtool.evaluation.assertions import AssertionResult
from llmtool.evaluation.baseline import BaselineError, Cell, Comparison, compare_evaluations, resolve_baseline
from llmtool.evaluation.results import CaseResult, EvalReport
from llmtool.store import EvaluationRecord, StoreError
from llmtool.store.evaluation_queries import EvaluationQueries, StoredCell
from llmtool.store.protocol import RunStore
from llmtool.store.records import CellRun
from llmtool.web.context import AppContext

LISTED = 50  # evaluations offered in a picker
NO_STORE = "this server keeps no evaluations (it has no run store)"
_DIGITS = re.compile(r"(\d+)")


class EvaluationNotFound(Exception):
    """No such evaluation for this user (missing, or someone else's: the same answer)."""

    def __init__(self, evaluation_id: str) -> None:
        super().__init__(f"evaluation {evaluation_id!r} not found")
        self.message = f"evaluation {evaluation_id} not found"


class StoredEvaluations:
    def __init__(self, context: AppContext) -> None:
        self.context = context

    def scope(self, login: str | None) -> str | None:
        """The login whose evaluations this user reads; None: every one (no logins, or an admin)."""
        if login is None:
            return None
        principal = self.context.principal(login)
        return None if principal is not None and principal.sees_all_runs else login

    def store(self) -> RunStore:
        store = self.context.service.store
        if store is None:
            raise StoreError(NO_STORE)
        return store

    async def listing(self, template: str, dataset: str, scope: str | None) -> list[EvaluationRecord]:
        """The evaluations of `template` on `dataset` (a file name) this user may read, newest first."""
        if self.context.service.store is None:
            return []
        queries = EvaluationQueries.of(self.store())
        return await queries.list_evaluations(template, dataset, user=scope, limit=LISTED)

    async def record(self, evaluation_id: str, scope: str | None) -> EvaluationRecord:
        record = await self.store().get_evaluation(evaluation_id)
        if record is None or (scope is not None and record.user != scope):
            raise EvaluationNotFound(evaluation_id)
        return record

    async def open(self, evaluation_id: str, scope: str | None) -> tuple[EvaluationRecord, EvalReport]:
        """The stored evaluation and its report (each run of each cell, as kept)."""
        record = await self.record(evaluation_id, scope)
        cells = await EvaluationQueries.of(self.store()).cells(record.id)
        return record, report_of(record, cells)

    async def compare(self, evaluation_id: str, baseline: str, scope: str | None) -> Comparison:
        """The stored evaluation against `baseline` ("last", an id or a name); a BaselineError says
        why there is none to compare with."""
        return await compare_evaluations(self.store(), evaluation_id, baseline, user=scope)

    async def baseline(self, template: str, dataset: str, choice: str, scope: str | None,
                       exclude: str | None = None) -> tuple[EvaluationRecord, list[Cell]]:
        """The baseline an evaluation starting now would be compared with, and its cells (to draw a
        running evaluation against it). A BaselineError when there is none."""
        now = EvaluationRecord(id=exclude or "", template=template, template_hash="", dataset=dataset,
                               dataset_hash="", models=[], created_at=time.time() + 1)
        record = await resolve_baseline(self.store(), now, choice, user=scope)
        cells = await EvaluationQueries.of(self.store()).cells(record.id)
        return record, [Cell.from_stored(cell) for cell in cells]


def report_of(record: EvaluationRecord, cells: Sequence[StoredCell]) -> EvalReport:
    """A stored evaluation as a report: one result per kept run of each cell (one per cell for an
    evaluation kept before runs were), cases in natural order (#2 before #10), models as run."""
    results: list[CaseResult] = []
    for cell in cells:
        runs = cell.runs or [_only_run(cell)]
        results += [_result(record, cell, run) for run in runs]
    case_ids = sorted(dict.fromkeys(c.case_id for c in cells), key=natural)
    models = list(dict.fromkeys([*record.models, *(c.model for c in cells)]))
    order = {case: i for i, case in enumerate(case_ids)}
    results.sort(key=lambda r: (order[r.case_id], models.index(r.model), r.repeat))
    return EvalReport(template=record.template, template_hash=record.template_hash, dataset=record.dataset,
                      models=models, case_ids=case_ids, results=results, evaluation_id=record.id,
                      name=record.name, repeats=max(record.repeats, 1))


def natural(text: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in _DIGITS.split(text) if part)


def _only_run(cell: StoredCell) -> CellRun:
    return CellRun(run_id=cell.run_id, status="passed" if cell.passed else "failed", reason=cell.reason,
                   latency=cell.latency, time_to_first_token=cell.time_to_first_token,
                   input_tokens=cell.input_tokens, output_tokens=cell.output_tokens, cost_usd=cell.cost_usd)


def _result(record: EvaluationRecord, cell: StoredCell, run: CellRun) -> CaseResult:
    failed = run.status != "passed" and bool(run.reason)
    return CaseResult(
        case_id=cell.case_id, line=0, model=cell.model, repeat=run.repeat, status=run.status,
        problems=[run.reason] if failed and run.status == "failed" else [],
        error=run.reason if failed and run.status != "failed" else None,
        assertions=[AssertionResult.model_validate(a.model_dump()) for a in run.assertions],
        latency=run.latency, time_to_first_token=run.time_to_first_token, input_tokens=run.input_tokens,
        output_tokens=run.output_tokens, cost_usd=run.cost_usd, grading_cost_usd=run.grading_cost_usd,
        run_id=run.run_id, template=record.template, template_hash=record.template_hash,
    )


__all__ = ["BaselineError", "EvaluationNotFound", "StoredEvaluations", "natural", "report_of"]
