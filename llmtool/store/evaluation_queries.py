"""Read-only questions about stored evaluations that `RunStore` does not ask (yet): the evaluations of
a template on a dataset, newest first (for `--baseline last`), and an evaluation's cells with what
their runs measured (for the deltas of a comparison).

    queries = EvaluationQueries.of(service.store)        # StoreError when the store is not SQL
    last = await queries.last_evaluation("classify", "classify.csv", exclude=current.id,
                                         before=current.created_at, user=login)
    cells = await queries.cells(current.id)              # [StoredCell], metrics from the cells' runs

They read the SQL store's tables (`schema.py`) through its engine, in short read transactions, on
SQLite and PostgreSQL alike; nothing here writes. `user`: the login whose evaluations to consider
(None: everyone's — a server with logins passes the login, as History does).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncEngine

from llmtool.events import Metrics
from llmtool.store.protocol import StoreError
from llmtool.store.records import EvaluationRecord
from llmtool.store.schema import evaluation_cells, evaluations, runs

MAX_LISTED = 200


class StoredCell(BaseModel):
    """One stored cell of an evaluation with its run's measures (None: no run, or not measured)."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    model: str
    passed: bool
    reason: str = ""
    run_id: str | None = None
    run_status: str | None = None
    latency: float | None = None
    time_to_first_token: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None


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
    metrics = _metrics(row["run_metrics"])
    measured: dict[str, Any] = {}
    if metrics is not None:
        measured = {
            "latency": metrics.total_time, "time_to_first_token": metrics.time_to_first_token,
            "input_tokens": metrics.input_tokens, "output_tokens": metrics.output_tokens,
            "cost_usd": metrics.cost_usd,
        }
    return StoredCell(
        case_id=row["case_id"], model=row["model"], passed=bool(row["passed"]), reason=row["reason"] or "",
        run_id=row["run_id"], run_status=row["run_status"], **measured,
    )


def _metrics(value: Any) -> Metrics | None:
    if not isinstance(value, dict):
        return None
    try:
        return Metrics.model_validate(value)
    except ValueError:  # written by an older version: shown without measures rather than failing
        return None
