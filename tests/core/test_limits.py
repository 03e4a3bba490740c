"""Roles' permissions and limits through the service, on a real SQLite store, with the loopback server as
OpenAI (it records every request, so "never reached the provider" is checked, not assumed) and the
paced demo model: refusals and their sentences, budgets and their reset times, fair scheduling, and
nothing limited without logins."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from llmtool.accounts.principal import Principal
from llmtool.errors import (
    BudgetExceededError,
    EvaluationTooLargeError,
    PermissionDeniedError,
    TooManyRunsError,
)
from llmtool.evaluation import evaluate, load_dataset
from llmtool.events import Failed, Metrics, Notice, TextDelta
from llmtool.loopback import LoopbackServer
from llmtool.service import LLMService, Run, RunOrigin, RunRequest
from llmtool.settings import Settings, load_settings
from llmtool.store import RunRecord
from llmtool.templates import load_template
from tests.helpers import write_template

PRICED = "openai:gpt-4.1-mini"  # priced in models.toml, answered by the loopback server
UNPRICED = "openai:brand-new-model"  # any OpenAI name resolves, with its cost unknown
ROLES = {"ann": "partner", "bob": "member", "cat": "partner", "root": "admin"}


def settings_for(loopback: LoopbackServer, folder: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{folder / 'runs.db'}",
        "OPENAI_API_KEY": "sk-loopback-secret", "OPENAI_BASE_URL": loopback.openai_base_url,
        "demo": {"first_token_delay": 0.0, "tokens_per_second": 100_000},
        "retry": {"max_attempts": 1},
        "store": {"flush_interval": 0.05},
        "roles": {"partner": {"models": ["openai:gpt-4.1*", "openai:brand-*", "demo:*"], "templates": ["say*"]}},
    }
    return load_settings(**{**values, **overrides})


def principals(settings: Settings, roles: dict[str, str] = ROLES) -> Callable[[str], Principal | None]:
    def find(user: str) -> Principal | None:
        role = roles.get(user)
        return None if role is None else Principal(user=user, role=role, policy=settings.roles[role])

    return find


@pytest.fixture
async def opened(upstream: LoopbackServer, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """`await opened(**settings)`: a service on its own SQLite store with the logins of ROLES."""
    services: list[LLMService] = []

    async def open_(logins: bool = True, **overrides: Any) -> LLMService:
        settings = settings_for(upstream, tmp_path / uuid.uuid4().hex[:6], **overrides)
        service = await LLMService.open(settings, principals=principals(settings) if logins else None)
        services.append(service)
        return service

    yield open_
    for service in services:
        await service.aclose()


def origin(user: str | None, source: str = "api") -> RunOrigin:
    return RunOrigin(user=user, source=source)  # type: ignore[arg-type]


async def seed_spend(service: LLMService, user: str, cost: float, at: float) -> None:
    """A stored run of `user` that cost `cost` dollars, made at `at`."""
    assert service.store is not None
    record = RunRecord(id=uuid.uuid4().hex[:12], user=user, model=PRICED, request={"model": PRICED},
                       status="completed", metrics=Metrics(cost_usd=cost), created_at=at, ended_at=at)
    await service.store.save([record], [])


async def first_text_after(run: Run, began: float) -> float:
    async for event in run.events():
        if isinstance(event, TextDelta):
            return time.monotonic() - began
    raise AssertionError(f"run {run.id} ended without text: {run.terminal}")


# -- without logins nothing is limited -------------------------------------------------------------
async def test_without_logins_nothing_is_limited(opened, upstream: LoopbackServer) -> None:
    tight = {"partner": {"models": [], "runs_per_minute": 1, "max_concurrent_runs": 1, "daily_budget": 0.0}}
    service = await opened(logins=False, roles=tight)
    runs = [service.start(RunRequest(model=PRICED, prompt=f"hello {i}"), origin("ann")) for i in range(5)]
    assert {(await run.wait()).kind for run in runs} == {"completed"}
    assert len(upstream.requests) == 5
    assert service.allowed_models("ann") == service.models() and service.may_write_prompts("ann")


async def test_with_logins_a_run_without_a_login_is_not_limited(opened, upstream: LoopbackServer) -> None:
    service = await opened(roles={"partner": {"models": []}})
    run = service.start(RunRequest(model=PRICED, prompt="from the command line"), RunOrigin(source="cli"))
    assert (await run.wait()).kind == "completed"


# -- permissions -----------------------------------------------------------------------------------
async def test_a_model_the_role_does_not_allow_is_refused_before_anything_is_sent(opened, upstream) -> None:
    service = await opened()
    with pytest.raises(PermissionDeniedError, match=r"Your role \(partner\) may not use openai:gpt-4o"):
        service.start(RunRequest(model="openai:gpt-4o", prompt="hello"), origin("ann"))
    with pytest.raises(PermissionDeniedError):
        await service.check_limits(RunRequest(model="openai:gpt-4o", prompt="hello"), origin("ann"))
    run = service.start(RunRequest(model="openai:gpt-4o", prompt="hello"), origin("bob"))  # a member may
    assert (await run.wait()).kind == "completed"
    assert len(upstream.requests) == 1
    assert service.recorder is not None and service.store is not None
    await service.recorder.flush()
    assert len((await service.store.list_runs(_all())).runs) == 1  # the refused ones were never runs


async def test_an_unpriced_model_is_refused_to_a_role_with_a_budget_saying_so(opened, upstream) -> None:
    service = await opened()
    with pytest.raises(PermissionDeniedError) as refused:
        service.start(RunRequest(model=UNPRICED, prompt="hello"), origin("ann"))
    assert "cost of openai:brand-new-model is unknown" in refused.value.message
    assert "budget" in refused.value.message and '[prices."openai:brand-new-model"]' in refused.value.message
    assert upstream.requests == []
    run = service.start(RunRequest(model=UNPRICED, prompt="hello"), origin("bob"))  # no budget: may
    assert (await run.wait()).kind == "completed"


async def test_templates_and_prompts_of_ones_own_follow_the_role(opened, upstream, tmp_path: Path) -> None:
    service = await opened(roles={"partner": {"models": ["demo:*"], "templates": ["say*"], "free_prompts": False,
                                              "uploads": False}})
    say = load_template(write_template(tmp_path, "say", "---\nmodel: demo:echo\n---\nSay hi"))
    other = load_template(write_template(tmp_path, "other", "---\nmodel: demo:echo\n---\nOther"))
    with pytest.raises(PermissionDeniedError, match=r"may only run templates, not prompts of its own"):
        service.start(RunRequest(model="demo:echo", prompt="my own words"), origin("ann"))
    with pytest.raises(PermissionDeniedError, match=r"may not use the template 'other'"):
        service.start(other.to_run_request({}), origin("ann"))
    run = service.start(say.to_run_request({}), origin("ann"))
    assert (await run.wait()).kind == "completed"
    assert service.allowed_templates("ann", [say, other]) == [say]
    assert service.allowed_templates("ann", ["say", "other", "sayonara"]) == ["say", "sayonara"]
    assert service.allowed_templates("bob", ["say", "other"]) == ["say", "other"]
    assert not service.may_write_prompts("ann") and service.may_write_prompts("bob")
    assert not service.may_upload("ann") and service.may_upload("bob")
    assert service.may_see_usage("root") and not service.may_see_usage("bob") and service.may_see_usage(None)


async def test_the_model_lists_offer_only_what_the_role_may_use(opened) -> None:
    service = await opened()
    partner = {m.id for m in service.allowed_models("ann")}
    assert PRICED in partner and "demo:assistant" in partner
    assert not any(m.startswith(("openai:gpt-4o", "anthropic:")) for m in partner)
    assert {m.id for m in service.allowed_models("bob")} == {m.id for m in service.models()}
    live = await service.allowed_model_ids("ann")
    assert live and all(m.startswith(("openai:gpt-4.1", "openai:brand-", "demo:")) for m in live)


async def test_a_login_the_accounts_no_longer_know_is_refused(opened) -> None:
    service = await opened()
    with pytest.raises(PermissionDeniedError, match="not known here any more"):
        service.start(RunRequest(model=PRICED, prompt="hello"), origin("mallory"))


# -- runs per minute ------------------------------------------------------------------------------
async def test_runs_per_minute_refuses_with_when_to_retry_and_nothing_sent(opened, upstream) -> None:
    service = await opened(roles={"partner": {"models": ["openai:*"], "runs_per_minute": 3}})
    runs = [service.start(RunRequest(model=PRICED, prompt=f"n{i}"), origin("ann")) for i in range(3)]
    with pytest.raises(TooManyRunsError) as refused:
        service.start(RunRequest(model=PRICED, prompt="one too many"), origin("ann"))
    assert refused.value.message.startswith("You have started 3 runs in the last minute, the most your role "
                                            "(partner) allows; try again in ")
    assert 55 <= refused.value.retry_after <= 60
    with pytest.raises(TooManyRunsError):  # the look-before-starting says the same and counts nothing
        await service.check_limits(RunRequest(model=PRICED, prompt="one too many"), origin("ann"))
    other = service.start(RunRequest(model=PRICED, prompt="cat's own minute"), origin("cat"))
    for run in [*runs, other]:
        await run.wait()
    assert sorted(r.body["input"][-1]["content"] for r in upstream.requests) == ["cat's own minute", "n0", "n1", "n2"]


# -- budgets ---------------------------------------------------------------------------------------
async def test_a_spent_daily_budget_refuses_with_the_sentence_and_the_reset(opened, upstream) -> None:
    service = await opened()
    now = datetime(2026, 3, 14, 21, 30, tzinfo=UTC).timestamp()
    service.limits.clock = lambda: now
    await seed_spend(service, "ann", 4.87, at=now - 3600)
    await seed_spend(service, "ann", 0.25, at=now - 2 * 86400)  # earlier this month: not today's
    await seed_spend(service, "bob", 9.00, at=now - 60)  # someone else's
    request = RunRequest(model=PRICED, prompt="hello", max_output_tokens=50)
    await service.check_limits(request, origin("ann"))  # $4.87 of $5.00: still fits
    await seed_spend(service, "ann", 0.20, at=now - 60)
    with pytest.raises(BudgetExceededError) as refused:
        await service.check_limits(request, origin("ann"))
    assert refused.value.message == ("You have spent $5.07 of your $5.00 daily budget; it resets at 00:00 UTC "
                                     "(in 2 h 30 min)")
    assert refused.value.retry_after == 2.5 * 3600
    spending = await service.spending("ann")
    assert spending is not None and round(spending.day, 2) == 5.07 and round(spending.month, 2) == 5.32
    # Through start (a surface that did not look first): the run ends failed, its provider never asked.
    run = service.start(request, origin("ann"))
    terminal = await run.wait()
    assert isinstance(terminal, Failed) and terminal.error_kind == "budget_exceeded"
    assert terminal.message.startswith("You have spent $5.07 of your $5.00 daily budget")
    assert upstream.requests == []
    await service.check_limits(request, origin("bob"))  # a member has no budget


async def test_a_spent_monthly_budget_says_when_the_month_resets(opened, upstream) -> None:
    service = await opened()
    now = datetime(2026, 3, 14, 12, 0, tzinfo=UTC).timestamp()
    service.limits.clock = lambda: now
    await seed_spend(service, "ann", 50.10, at=datetime(2026, 3, 2, tzinfo=UTC).timestamp())
    await seed_spend(service, "ann", 99.00, at=datetime(2026, 2, 27, tzinfo=UTC).timestamp())  # last month
    with pytest.raises(BudgetExceededError) as refused:
        await service.check_limits(RunRequest(model=PRICED, prompt="hello"), origin("ann"))
    assert refused.value.message == ("You have spent $50.10 of your $50.00 monthly budget; it resets on 1 April at "
                                     "00:00 UTC (in 17 days 12 h)")
    assert refused.value.retry_after == (17 * 24 + 12) * 3600


async def test_runs_in_flight_count_against_the_budget(opened, upstream) -> None:
    """A run still streaming has cost what it sent and received so far: the next one sees it."""
    costly = {"demo:assistant": {"input": 100_000.0, "output": 100_000.0}}  # $0.10 a token
    service = await opened(prices=costly, demo={"first_token_delay": 0.0, "tokens_per_second": 20},
                           roles={"partner": {"models": ["demo:*"], "daily_budget": 2.0}})
    first = service.start(RunRequest(model="demo:assistant", prompt="Tell me about streaming"), origin("ann"))
    async for event in first.events():
        if isinstance(event, TextDelta) and len(first.text_so_far().split()) >= 20:
            break
    with pytest.raises(BudgetExceededError, match=r"daily budget, counting your runs in progress"):
        await service.check_limits(RunRequest(model="demo:assistant", prompt="again"), origin("ann"))
    first.cancel()
    await first.wait()


async def test_a_free_model_runs_with_a_budget_of_zero(opened) -> None:
    service = await opened(roles={"partner": {"models": ["demo:*"], "daily_budget": 0.0}})
    run = service.start(RunRequest(model="demo:assistant", prompt="hello"), origin("ann"))
    assert (await run.wait()).kind == "completed"


# -- evaluations -----------------------------------------------------------------------------------
async def test_an_evaluation_larger_than_the_role_allows_is_refused_with_the_numbers(opened, tmp_path) -> None:
    service = await opened(roles={"partner": {"models": ["demo:*"], "templates": ["*"], "max_evaluation_runs": 10}})
    template = load_template(write_template(tmp_path, "say", "---\nmodel: demo:echo\nvariables:\n  w: {}\n---\n"
                                                             "Say {{ w }}"))
    cases = tmp_path / "cases.csv"
    cases.write_text("w\n" + "".join(f"word{i}\n" for i in range(6)), encoding="utf-8")
    dataset = load_dataset(cases, template)
    steps = evaluate(service, template, dataset, ["demo:echo", "demo:assistant"], origin=origin("ann"))
    with pytest.raises(EvaluationTooLargeError) as refused:
        await steps.__anext__()
    assert refused.value.message == ("This evaluation would make 12 runs (6 cases × 2 models), more than your role "
                                     "(partner) allows in one evaluation (10): use fewer cases or models")
    assert service.store is not None and (await service.store.list_runs(_all())).runs == []
    done = [step async for step in evaluate(service, template, dataset, ["demo:echo"], origin=origin("ann"))]
    assert len(done) == 6  # 6 × 1 fits


# -- concurrency and fairness ----------------------------------------------------------------------
async def test_runs_past_the_roles_concurrency_wait_their_turn_saying_so(opened, upstream) -> None:
    service = await opened(demo={"first_token_delay": 0.0, "tokens_per_second": 200},
                           roles={"partner": {"models": ["demo:*"], "max_concurrent_runs": 2}})
    runs = [service.start(RunRequest(model="demo:assistant", prompt=f"n{i}"), origin("ann")) for i in range(4)]
    await asyncio.sleep(0.05)
    waiting = [run for run in runs if any(isinstance(e, Notice) for e in run.log)]
    assert waiting == runs[2:]
    notice = next(e for e in runs[3].log if isinstance(e, Notice))
    assert notice.message.startswith("Waiting to start: you may run 2 at a time and 2 of yours are running; "
                                     "1 of your runs is ahead of this one")
    assert {(await run.wait()).kind for run in runs} == {"completed"}
    assert [e.kind for e in runs[3].log][:3] == ["started", "notice", "text"]  # one `started`, then its answer


async def test_a_full_line_refuses_and_a_stopped_waiting_run_never_reaches_the_provider(opened, upstream) -> None:
    from llmtool.loopback import Scenario

    service = await opened(runs={"max_waiting_per_user": 2},
                           roles={"partner": {"models": ["openai:*"], "max_concurrent_runs": 1}})
    upstream.enqueue(Scenario(tokens_per_second=20))
    runs = [service.start(RunRequest(model=PRICED, prompt=f"n{i}"), origin("ann")) for i in range(3)]
    with pytest.raises(TooManyRunsError, match="You have 2 runs waiting for a free slot") as refused:
        service.start(RunRequest(model=PRICED, prompt="n3"), origin("ann"))
    assert refused.value.retry_after == 5.0
    assert runs[1].cancel()
    assert (await runs[1].wait()).kind == "stopped"
    assert {(await run.wait()).kind for run in (runs[0], runs[2])} == {"completed"}
    assert sorted(r.body["input"][-1]["content"] for r in upstream.requests) == ["n0", "n2"]


async def test_a_second_users_run_starts_at_once_while_the_first_has_many_queued(opened) -> None:
    service = await opened(demo={"first_token_delay": 0.05, "tokens_per_second": 40},
                           runs={"max_concurrent": 8, "user_headroom": 2, "max_waiting_per_user": 64},
                           roles={"member": {"max_concurrent_runs": None}})
    burst = [service.start(RunRequest(model="demo:assistant", prompt=f"story {i}"), origin("bob")) for i in range(40)]
    await asyncio.sleep(0.1)
    assert service.limits.scheduler.waiting("bob") == 34 and service.limits.scheduler.running["bob"] == 6
    began = time.monotonic()
    quick = service.start(RunRequest(model="demo:echo", prompt="Hi there"), origin("root"))
    waited = await first_text_after(quick, began)
    assert waited < 0.5, f"the second user's first token took {waited:.2f} s"
    assert service.limits.scheduler.waiting("bob") >= 30  # bob's burst was still queued meanwhile
    for run in burst:
        run.cancel()
    for run in [*burst, quick]:
        await run.wait()
    assert service.limits.scheduler.total == 0 and not service.limits.scheduler.lines


def _all():  # type: ignore[no-untyped-def]
    from llmtool.store import RunQuery

    return RunQuery(limit=100)
