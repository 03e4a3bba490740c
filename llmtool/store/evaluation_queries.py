"""Read-only questions about stored evaluations that `RunStore` does not ask (yet): the evaluations of
a template on a dataset, newest first (for `--baseline last`), and an evaluation's cells with what
their runs measured (for the deltas of a comparison).

    queries = EvaluationQueries.of(service.store)        # StoreError when the store is not SQL
    last = await queries.last_evaluation("classify", "classify.csv", exclude=current.id,
                                         before=current.created_at, user=login)
    named = await queries.named("nightly", template="classify", user=login)   # newest of that name
    cells = await queries.cells(current.id)              # [StoredCell], metrics from the cells' runs
    cells[0].runs[0].assertions                          # each run of a cell: verdict, assertions, measures

They read the SQL store's tables (`schema.py`) through its engine, in short read transactions, on
SQLite and PostgreSQL alike; nothing here writes. `user`: the login whose evaluations to consider
(None: everyone's — a server with logins passes the login, as History does).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from pydantic import Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from llmtool.events import Metrics
from llmtool.store.protocol import StoreError
from llmtool.store.records import CellAssertion, CellRun, CellVerdict, EvaluationRecord
from llmtool.store.schema import evaluation_cells, evaluations, runs

MAX_LISTED = 200


class StoredCell(CellVerdict):
    """One stored cell of an evaluation with its measures (None: no run, or not measured).

    `runs`: each run of the cell (one per repeat) with its verdict, assertion results and measures;
    empty for an evaluation stored before they were kept. The measures are then its run's (joined),
    else its runs' medians (cost: their mean, grading included; None when any is unknown)."""

    run_status: str | None = None
    runs: list[CellRun] = Field(default_factory=list)

    @property
    def assertions(self) -> list[CellAssertion]:
        """The assertion results of its first run ([] when none were kept)."""
        return self.runs[0].assertions if self.runs else []

    @property
    def repeats(self) -> int:
        return max(len(self.runs), 1)


class EvaluationQueries:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @classmethod
    def of(cls, store: object) -> EvaluationQueries:
        """The queries over `store`'s database; a StoreError when it is not the SQL store."""
        engine = getattr(store, "engine", None)
        if not isinstance(engine, AsyncEngine):
            raise StoreError("comparing evaluations needs the SQL run store (SQLite or PostgreSQL)")
        return cls(engine)

    async def list_evaluations(
        self,
        template: str,
        dataset: str | None = None,
        *,
        user: str | None = None,
        statuses: Sequence[str] | None = None,
        before: float | None = None,
        exclude: str | None = None,
        limit: int = 20,
    ) -> list[EvaluationRecord]:
        """The evaluations of `template` (on `dataset`, a file name as stored, when given), newest
        first, at most `limit` (≤ MAX_LISTED). Their `cells` are not read (an empty list): see
        `cells`. `statuses`: only these (e.g. ("completed",)); `before`: created before this Unix
        time; `exclude`: an evaluation id to leave out (the one being compared)."""
        statement = sa.select(evaluations).where(evaluations.c.template == template)
        if dataset is not None:
            statement = statement.where(evaluations.c.dataset == dataset)
        if user is not None:
            statement = statement.where(evaluations.c.user == user)
        if statuses is not None:
            statement = statement.where(evaluations.c.status.in_(list(statuses)))
        if before is not None:
            statement = statement.where(evaluations.c.created_at < before)
        if exclude is not None:
            statement = statement.where(evaluations.c.id != exclude)
        statement = statement.order_by(evaluations.c.created_at.desc(), evaluations.c.id.desc())
        statement = statement.limit(max(1, min(limit, MAX_LISTED)))
        async with self.engine.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        return [EvaluationRecord(**row) for row in rows]

    async def last_evaluation(
        self,
        template: str,
        dataset: str,
        *,
        user: str | None = None,
        before: float | None = None,
        exclude: str | None = None,
        statuses: Sequence[str] = ("completed",),
    ) -> EvaluationRecord | None:
        """The newest completed evaluation of `template` on `dataset` (see `list_evaluations`), or None."""
        found = await self.list_evaluations(template, dataset, user=user, statuses=statuses, before=before,
                                            exclude=exclude, limit=1)
        return found[0] if found else None

    async def named(self, name: str, *, template: str | None = None, user: str | None = None,
                    exclude: str | None = None, statuses: Sequence[str] = ("completed",)) -> EvaluationRecord | None:
        """The newest evaluation called `name` (of `template`, when given; not `exclude`), or None."""
        statement = sa.select(evaluations).where(evaluations.c.name == name,
                                                 evaluations.c.status.in_(list(statuses)))
        if template is not None:
            statement = statement.where(evaluations.c.template == template)
        if user is not None:
            statement = statement.where(evaluations.c.user == user)
        if exclude is not None:
            statement = statement.where(evaluations.c.id != exclude)
        statement = statement.order_by(evaluations.c.created_at.desc(), evaluations.c.id.desc()).limit(1)
        async with self.engine.connect() as connection:
            row = (await connection.execute(statement)).mappings().first()
        return None if row is None else EvaluationRecord(**row)

    async def cells(self, evaluation_id: str) -> list[StoredCell]:
        """The evaluation's cells (by case, then model), each with its run's status and measures."""
        statement = (
            sa.select(evaluation_cells, runs.c.status.label("run_status"), runs.c.metrics.label("run_metrics"))
            .select_from(evaluation_cells.outerjoin(runs, runs.c.id == evaluation_cells.c.run_id))
            .where(evaluation_cells.c.evaluation_id == evaluation_id)
            .order_by(evaluation_cells.c.case_id, evaluation_cells.c.model)
        )
        async with self.engine.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        return [_cell(row) for row in rows]


def _cell(row: Any) -> StoredCell:
    runs = _runs(row["runs"])
    metrics = _metrics(row["run_metrics"])
    measured: dict[str, Any] = {}
    if runs:
        measured = _measures(runs)
    elif metrics is not None:
        measured = {
            "latency": metrics.total_time, "time_to_first_token": metrics.time_to_first_token,
            "input_tokens": metrics.input_tokens, "output_tokens": metrics.output_tokens,
            "cost_usd": metrics.cost_usd,
        }
    return StoredCell(
        case_id=row["case_id"], model=row["model"], passed=bool(row["passed"]), reason=row["reason"] or "",
        run_id=row["run_id"], run_status=row["run_status"], runs=runs, **measured,
    )


def _runs(value: Any) -> list[CellRun]:
    if not isinstance(value, list):
        return []
    try:
        return [CellRun.model_validate(run) for run in value]
    except ValidationError:  # written by another version: shown from its run alone
        return []


def _measures(runs: list[CellRun]) -> dict[str, Any]:
    """One run's measures, or the median of several (cost: the mean, unknown when any is)."""
    def median(values: list[float | int | None]) -> float | None:
        known = [v for v in values if v is not None]
        return float(statistics.median(known)) if known else None

    def whole(value: float | None) -> int | None:
        return None if value is None else round(value)

    costs = [r.cost_usd for r in runs]
    return {
        "latency": median([r.latency for r in runs]),
        "time_to_first_token": median([r.time_to_first_token for r in runs]),
        "input_tokens": whole(median([r.input_tokens for r in runs])),
        "output_tokens": whole(median([r.output_tokens for r in runs])),
        "cost_usd": None if any(c is None for c in costs) else statistics.fmean(c or 0.0 for c in costs),
    }


def _metrics(value: Any) -> Metrics | None:
    if not isinstance(value, dict):
        return None
    try:
        return Metrics.model_validate(value)
    except ValueError:  # written by an older version: shown without measures rather than failing
        return None
