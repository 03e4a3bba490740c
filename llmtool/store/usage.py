"""What users spent, from the run records: for budgets (`spent`) and the admin view (`daily_usage`).

    spent = await spent_since(store, "ann", month_start=…, day_start=…, exclude={"3f2a…"})
    rows = await daily_usage(store, since=time.time() - 7 * 86400, user=None)

Read-only queries on the SQL store's engine, served by the index on runs(user, created_at). A run's
cost is its record's `cost_usd`, written when it ends: a run still streaming counts nothing here (the
service adds its own runs in flight, `exclude`d here so none counts twice). Days are UTC days.
A store that is not the SQL one (none other exists today) answers nothing spent and no usage.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from llmtool.store.protocol import RunStore
from llmtool.store.schema import runs

DAY = 86400


@dataclass(frozen=True)
class Spent:
    day: float  # dollars since day_start
    month: float  # dollars since month_start


@dataclass(frozen=True)
class DailyUsage:
    day: date  # UTC
    user: str | None  # None: runs made without a login
    runs: int
    cost_usd: float  # of the runs whose cost is known
    unpriced: int  # ended runs whose cost is unknown (a model without a price)
    running: int  # not ended yet


def _engine(store: RunStore | None) -> AsyncEngine | None:
    engine = getattr(store, "engine", None)
    return engine if isinstance(engine, AsyncEngine) else None


async def spent_since(store: RunStore | None, user: str, *, month_start: float, day_start: float,
                      exclude: Collection[str] = ()) -> Spent:
    """Dollars `user`'s runs created since `month_start` cost (and since `day_start`, which must be
    later), leaving out the runs `exclude` names."""
    engine = _engine(store)
    if engine is None:
        return Spent(0.0, 0.0)
    today = sa.case((runs.c.created_at >= day_start, runs.c.cost_usd), else_=0.0)
    statement = sa.select(sa.func.coalesce(sa.func.sum(today), 0.0),
                          sa.func.coalesce(sa.func.sum(runs.c.cost_usd), 0.0)).where(
        runs.c.user == user, runs.c.created_at >= month_start, runs.c.cost_usd.is_not(None),
    )
    if exclude:
        statement = statement.where(runs.c.id.not_in(list(exclude)))
    async with engine.connect() as connection:
        day, month = (await connection.execute(statement)).one()
    return Spent(day=float(day), month=float(month))


async def daily_usage(store: RunStore | None, *, since: float, user: str | None = None) -> list[DailyUsage]:
    """Runs and spend per user per UTC day since `since` (only `user`'s when given), newest day
    first, then by user."""
    engine = _engine(store)
    if engine is None:
        return []
    scaled = runs.c.created_at / DAY
    # PostgreSQL rounds a cast to integer; SQLite truncates (and may lack floor()): both floor here.
    bucket = sa.func.floor(scaled) if engine.dialect.name == "postgresql" else sa.cast(scaled, sa.Integer)
    day = bucket.label("day")
    ended = runs.c.status != "running"
    statement = (
        sa.select(
            day, runs.c.user, sa.func.count().label("runs"),
            sa.func.coalesce(sa.func.sum(runs.c.cost_usd), 0.0).label("cost"),
            sa.func.sum(sa.case((sa.and_(ended, runs.c.cost_usd.is_(None)), 1), else_=0)).label("unpriced"),
            sa.func.sum(sa.case((ended, 0), else_=1)).label("running"),
        )
        .where(runs.c.created_at >= since)
        .group_by(day, runs.c.user)
        .order_by(day.desc(), runs.c.user)
    )
    if user is not None:
        statement = statement.where(runs.c.user == user)
    async with engine.connect() as connection:
        rows = (await connection.execute(statement)).all()
    return [
        DailyUsage(day=datetime.fromtimestamp(int(row.day) * DAY, UTC).date(), user=row.user, runs=int(row.runs),
                   cost_usd=float(row.cost), unpriced=int(row.unpriced or 0), running=int(row.running or 0))
        for row in rows
    ]
