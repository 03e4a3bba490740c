"""`llmtool usage`: runs and spend per user per UTC day, read from the store the app writes."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid

import pytest

from llmtool.commands import usage
from llmtool.events import Metrics
from llmtool.service import LLMService
from llmtool.settings import load_settings
from llmtool.store import RunRecord

DAY = 86400


def run_usage(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """The command as `llmtool usage …` runs it (registered beside the others in cli.py)."""
    parser = argparse.ArgumentParser(prog="llmtool")
    parser.add_argument("--config")
    usage.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["usage", *argv])
    capsys.readouterr()
    code = args.handler(args)
    out, err = capsys.readouterr()
    return code, out, err


def seed(*runs: tuple[str | None, float | None, float, str]) -> None:
    """Stored runs: (user, cost or None for unknown, created_at, status)."""

    async def go() -> None:
        service = await LLMService.open(load_settings())
        try:
            assert service.store is not None
            await service.store.save([
                RunRecord(id=uuid.uuid4().hex[:12], user=user, model="openai:gpt-4.1-mini", request={},
                          status=status, metrics=Metrics(cost_usd=cost), created_at=at)  # type: ignore[arg-type]
                for user, cost, at, status in runs
            ], [])
        finally:
            await service.aclose()

    asyncio.run(go())


def test_usage_lists_runs_and_spend_per_user_per_day_with_totals(capsys) -> None:
    today = time.time() // DAY * DAY + 3600
    seed(("ann", 0.5, today, "completed"), ("ann", 1.25, today + 60, "completed"),
         ("ann", None, today + 120, "failed"), ("bob", 0.001, today, "completed"),
         ("ann", 2.0, today - DAY, "completed"), (None, 0.0, today, "completed"),
         ("ann", 9.0, today - 30 * DAY, "completed"))  # outside the default 7 days
    code, out, err = run_usage(capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["day", "(UTC)", "user", "runs", "spent"]
    day = time.strftime("%Y-%m-%d", time.gmtime(today))
    yesterday = time.strftime("%Y-%m-%d", time.gmtime(today - DAY))
    assert lines[1].split() == [day, "(no", "login)", "1", "$0.0000"]
    assert lines[2].split() == [day, "ann", "3", "$1.75", "1", "cost", "unknown"]
    assert lines[3].split() == [day, "bob", "1", "$0.0010"]
    assert lines[4].split() == [yesterday, "ann", "1", "$2.00"]
    assert lines[5] == ""
    assert [line.split() for line in lines[6:]] == [["total", "(no", "login)", "1", "$0.0000"],
                                                     ["total", "ann", "4", "$3.75", "1", "cost", "unknown"],
                                                     ["total", "bob", "1", "$0.0010"]]


def test_usage_of_one_user_over_more_days_as_json(capsys) -> None:
    today = time.time() // DAY * DAY + 60
    seed(("ann", 0.5, today, "completed"), ("ann", 9.0, today - 20 * DAY, "stopped"), ("bob", 1.0, today, "completed"))
    code, out, _ = run_usage(capsys, "--days", "30", "--user", "ann", "--json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["day"], r["user"], r["runs"], r["cost_usd"]) for r in rows] == [
        (time.strftime("%Y-%m-%d", time.gmtime(today)), "ann", 1, 0.5),
        (time.strftime("%Y-%m-%d", time.gmtime(today - 20 * DAY)), "ann", 1, 9.0),
    ]


def test_usage_says_when_there_is_nothing_and_refuses_bad_days(capsys) -> None:
    code, out, err = run_usage(capsys, "--user", "nobody")
    assert code == 0 and out == "" and "no runs by nobody in the last 7 days" in err
    from llmtool.errors import InvalidRequestError

    with pytest.raises(InvalidRequestError, match="--days 0"):
        run_usage(capsys, "--days", "0")
