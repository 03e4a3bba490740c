"""`llmtool usage`: runs and spend per user per UTC day, from the run store (the admin view's figures).

    llmtool usage                      # the last 7 days (today included), every user
    llmtool usage --days 30 --user ann
    llmtool usage --json               # one JSON object per user and day

A run's cost is the one its record keeps when it ends; runs of a model without a price are counted
apart ("cost unknown"), never as $0. Exit codes: 0 ok, 2 bad usage or an unusable store.
"""

from __future__ import annotations

import argparse
import json
import sys

from llmtool.commands.logs import _with_store
from llmtool.console import EXIT_OK
from llmtool.errors import InvalidRequestError
from llmtool.store import RunStore
from llmtool.store.usage import DAY, DailyUsage, daily_usage

DEFAULT_DAYS = 7
NO_LOGIN = "(no login)"


def register(commands: argparse._SubParsersAction) -> None:
    usage = commands.add_parser(
        "usage", help="runs and spend per user per day",
        description="Runs and spend per user per UTC day, from the run store, newest day first.",
    )
    usage.add_argument("--days", default=str(DEFAULT_DAYS), metavar="N",
                       help=f"the last N days, today included (default {DEFAULT_DAYS})")
    usage.add_argument("--user", metavar="U", help="only this login")
    usage.add_argument("--json", action="store_true", help="one JSON object per user and day")
    usage.set_defaults(handler=_usage)


def _usage(args: argparse.Namespace) -> int:
    days = _days(args.days)
    if args.user is not None and not args.user.strip():
        raise InvalidRequestError("--user: the value is empty")

    async def body(store: RunStore) -> int:
        import time

        since = (time.time() // DAY - (days - 1)) * DAY
        rows = await daily_usage(store, since=since, user=args.user)
        if args.json:
            for row in rows:
                print(json.dumps(row_json(row), ensure_ascii=False))
        elif rows:
            print(describe(rows))
        else:
            who = f" by {args.user}" if args.user else ""
            print(f"no runs{who} in the last {days} day{'s' if days != 1 else ''}", file=sys.stderr)
        return EXIT_OK

    return _with_store(args, body)


def _days(value: str) -> int:
    try:
        days = int(value)
    except ValueError:
        raise InvalidRequestError(f"--days {value}: give a whole number of days (1 or more)") from None
    if not 1 <= days <= 3660:
        raise InvalidRequestError(f"--days {value}: give a number of days from 1 to 3660")
    return days


def money(dollars: float) -> str:
    return f"${dollars:,.2f}" if dollars >= 1 else f"${dollars:.4f}"


def row_json(row: DailyUsage) -> dict[str, object]:
    return {"day": row.day.isoformat(), "user": row.user, "runs": row.runs, "cost_usd": round(row.cost_usd, 6),
            "unpriced_runs": row.unpriced, "running": row.running}


def describe(rows: list[DailyUsage]) -> str:
    """A table: one line per user and day, then each user's total."""
    def line(day: str, user: str, runs: int | str, spent: str, note: str = "") -> str:
        return f"{day:<10}  {user:<20}  {runs:>6}  {spent:>10}  {note}".rstrip()

    def note(unpriced: int, running: int) -> str:
        parts = [f"{unpriced} cost unknown"] if unpriced else []
        parts += [f"{running} running"] if running else []
        return ", ".join(parts)

    lines = [line("day (UTC)", "user", "runs", "spent")]
    totals: dict[str, list[float]] = {}
    for row in rows:
        user = row.user or NO_LOGIN
        lines.append(line(row.day.isoformat(), user, row.runs, money(row.cost_usd), note(row.unpriced, row.running)))
        total = totals.setdefault(user, [0, 0.0, 0, 0])
        total[0] += row.runs
        total[1] += row.cost_usd
        total[2] += row.unpriced
        total[3] += row.running
    if len({row.day for row in rows}) > 1:
        lines.append("")
        for user, (runs, spent, unpriced, running) in sorted(totals.items()):
            lines.append(line("total", user, int(runs), money(spent), note(int(unpriced), int(running))))
    return "\n".join(lines)
