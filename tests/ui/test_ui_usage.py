"""The words of the Usage tab and of the spend line, from figures (no app)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from llmtool.service.limits import Spending
from llmtool.store.usage import DailyUsage
from llmtool.ui.status import spend_line
from llmtool.ui.usage import NO_LOGIN, chosen_user, money, select, summary, table_rows

MONDAY, TUESDAY = date(2025, 3, 3), date(2025, 3, 4)
ROWS = [
    DailyUsage(day=TUESDAY, user="ann", runs=3, cost_usd=0.42, unpriced=0, running=1),
    DailyUsage(day=TUESDAY, user=None, runs=1, cost_usd=0.0, unpriced=1, running=0),
    DailyUsage(day=MONDAY, user="ann", runs=2, cost_usd=1.5, unpriced=0, running=0),
    DailyUsage(day=MONDAY, user="bob", runs=1, cost_usd=0.0042, unpriced=0, running=0),
]
NOON = datetime(2025, 3, 4, 12, 0, tzinfo=UTC).timestamp()
MIDNIGHT = datetime(2025, 3, 5, tzinfo=UTC).timestamp()
MONTH_END = datetime(2025, 4, 1, tzinfo=UTC).timestamp()


def test_money_keeps_fractions_of_a_cent_below_a_dollar() -> None:
    assert [money(v) for v in (0, 0.0042, 0.42, 1.5, 1234.5)] == ["$0.0000", "$0.0042", "$0.4200", "$1.50",
                                                                  "$1,234.50"]


def test_a_row_per_user_and_day_runs_without_a_login_named_so() -> None:
    assert table_rows(ROWS[:2]) == [["2025-03-04", "ann", 3, "$0.4200", 0, 1],
                                    ["2025-03-04", NO_LOGIN, 1, "$0.0000", 1, 0]]
    assert select(ROWS, "bob") == [ROWS[3]] and select(ROWS, NO_LOGIN) == [ROWS[1]] and select(ROWS, None) == ROWS
    assert chosen_user("(everyone)") is None and chosen_user(" ann ") == "ann" and chosen_user(None) is None


def test_the_summary_adds_up_per_user() -> None:
    text = summary(ROWS, 7, None)
    head, users = text.split("\n\n")
    assert head == "Last 7 days (UTC), everyone: 7 runs, $1.92 (1 cost unknown, 1 running)"
    assert users == ("**(no login)**: 1 run, $0.0000 (1 cost unknown) · **ann**: 5 runs, $1.92 (1 running) · "
                     "**bob**: 1 run, $0.0042")
    assert summary(select(ROWS, "bob"), 1, "bob") == "Today (UTC), bob: 1 run, $0.0042"
    assert summary([], 30, "carol") == "No runs last 30 days (UTC), carol."


def spending(day: float, month: float, daily: float | None = 5.0, monthly: float | None = 50.0) -> Spending:
    return Spending(user="ann", day=day, month=month, daily_budget=daily, monthly_budget=monthly, in_flight=0.0,
                    day_resets=MIDNIGHT, month_resets=MONTH_END)


@pytest.mark.parametrize(("figures", "line"), [
    (spending(0.42, 3.1), "Today $0.42 of $5.00 · this month $3.10 of $50.00"),
    (spending(0.42, 3.1, daily=None), "This month $3.10 of $50.00"),
    (spending(0.42, 3.1, monthly=None), "Today $0.42 of $5.00"),
    (spending(5.0, 7.0), "Today $5.00 of $5.00 · this month $7.00 of $50.00 · the daily budget is spent until "
                         "00:00 UTC (in 12 h)"),
    (spending(1.0, 50.25), "Today $1.00 of $5.00 · this month $50.25 of $50.00 · the monthly budget is spent until "
                           "1 April (in 27 days 12 h)"),
    (spending(0.42, 3.1, daily=None, monthly=None), ""),
    (None, ""),
])
def test_the_spend_line(figures: Spending | None, line: str) -> None:
    assert spend_line(figures, NOON) == line
