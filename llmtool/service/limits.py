"""What a login's role allows and how much it may run and spend: checked by the service, for every surface.

    limits = Limits(settings.runs)
    limits.check_permissions(principal, request, model)   # PermissionDeniedError: model, template, prompt
    limits.check_rate(principal)                          # TooManyRunsError with retry_after
    await limits.check_budget(principal, model, request, store)   # BudgetExceededError with retry_after
    limits.check_evaluation(principal, cases=300, models=4)       # EvaluationTooLargeError

Roles are data (`Settings.roles`, see `RolePolicy`); unset limits do not apply. Without logins there
is no principal and nothing here is asked.

- **Runs per minute**: a sliding minute per user (`counters.py`); a refused start says when to retry.
- **Budgets**: per UTC day and UTC calendar month, from the run records' `cost_usd`
  (`store/usage.py`) plus what that user's runs in flight cost so far (prompt estimate plus output so
  far, or their final cost until the store has it): this process's, and other replicas' as they last
  reported it (`shared.py`). A role with a budget may use only priced models. A run is refused when
  what was spent, plus its own prompt's cost, passes the budget; the refused run never reaches its
  provider.
- **Evaluations**: cases × models × repeats, plus grading runs, against `max_evaluation_runs`.
- **Concurrency**: the fair scheduler (`scheduler.py`), per user below the process's capacity. With
  several replicas (`shared.py`) a login's runs on the others take their share of its
  `max_concurrent_runs` first: what is left of it may wait in this replica's line, and when nothing is
  left the run is refused (429) rather than left waiting for a slot another process frees.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol, TypeVar

from llmtool.catalog import ModelInfo
from llmtool.errors import BudgetExceededError, EvaluationTooLargeError, PermissionDeniedError, TooManyRunsError
from llmtool.events import Failed, Metrics, Notice, Started, Usage
from llmtool.service.counters import Counters, MemoryCounters
from llmtool.service.requests import RunRequest
from llmtool.service.scheduler import FairScheduler, QueueState, Ticket
from llmtool.service.shared import LocalOnly, RunElsewhere, SharedRuns, held_elsewhere
from llmtool.settings import RunSettings
from llmtool.store import RunStore
from llmtool.store.usage import spent_since
from llmtool.tokens import estimate_tokens

if TYPE_CHECKING:
    from llmtool.accounts.principal import Principal
    from llmtool.service.runs import Run

RATE_WINDOW = 60.0
log = logging.getLogger(__name__)


class Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound="Named | str")


@dataclass(frozen=True)
class Period:
    name: str  # "daily" / "monthly"
    start: float  # Unix time the period began (UTC)
    resets: float  # Unix time the next one begins


@dataclass(frozen=True)
class Spending:
    """What a user spent in the current UTC day and month (stored runs plus their runs in flight)."""

    user: str
    day: float
    month: float
    daily_budget: float | None
    monthly_budget: float | None
    in_flight: float  # of `day` and `month`: what runs still streaming cost so far
    day_resets: float  # Unix time
    month_resets: float


def periods(now: float) -> tuple[Period, Period]:
    """The UTC day and the UTC calendar month `now` falls in."""
    moment = datetime.fromtimestamp(now, UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    month = day.replace(day=1)
    next_month = (month + timedelta(days=32)).replace(day=1)
    return (Period("daily", day.timestamp(), (day + timedelta(days=1)).timestamp()),
            Period("monthly", month.timestamp(), next_month.timestamp()))


def in_words(seconds: float) -> str:
    """'3 h 12 min', '45 min', '40 s', '2 days 3 h'."""
    seconds = max(math.ceil(seconds), 1)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} day{'s' if days > 1 else ''}" + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def budget_sentence(spent: float, budget: float, period: Period, now: float, in_flight: float = 0.0) -> str:
    """'You have spent $4.87 of your $5.00 daily budget; it resets at 00:00 UTC (in 3 h 12 min)'."""
    counting = ", counting your runs in progress," if in_flight > 0 else ""
    if period.name == "daily":
        when = "at 00:00 UTC"
    else:
        resets = datetime.fromtimestamp(period.resets, UTC)
        when = f"on {resets.day} {resets:%B} at 00:00 UTC"
    return (f"You have spent ${spent:.2f} of your ${budget:.2f} {period.name} budget{counting}; "
            f"it resets {when} (in {in_words(period.resets - now)})")


def waiting_message(state: QueueState) -> str:
    """The notice of a run waiting for a slot."""
    if state.running >= state.cap:
        why = f"you may run {state.cap} at a time and {state.running} of yours are running"
    else:
        why = "the server is running as many runs as it takes"
    ahead = ""
    if state.ahead:
        ahead = f"; {state.ahead} of your runs {'is' if state.ahead == 1 else 'are'} ahead of this one"
    return f"Waiting to start: {why}{ahead}. It starts by itself when a slot frees."


class Limits:
    def __init__(self, settings: RunSettings, counters: Counters | None = None,
                 clock: Callable[[], float] = time.time, shared: SharedRuns | None = None) -> None:
        self.scheduler = FairScheduler(settings.max_concurrent, settings.user_headroom, settings.max_waiting_per_user)
        self.counters: Counters = counters or MemoryCounters()
        # The logins' runs on other replicas (the composition root shares them through Redis).
        self.shared: SharedRuns = shared or LocalOnly()
        self.clock = clock  # the wall clock: budgets follow UTC days and months
        self._in_flight: dict[str, dict[str, Run]] = {}  # user → their runs here whose end is not stored yet
        self._sending: set[str] = set()  # of those, the runs that went to their provider

    # -- permissions -------------------------------------------------------------------------------
    @staticmethod
    def allows_model(principal: Principal, model: ModelInfo) -> bool:
        return principal.may_use_model(model.id) and (model.priced or not principal.policy.budgeted)

    @staticmethod
    def check_model(principal: Principal, model: ModelInfo) -> None:
        if not principal.may_use_model(model.id):
            raise PermissionDeniedError(
                f"Your role ({principal.role}) may not use {model.id}: pick one of the models offered to you, "
                "or ask an admin to allow it"
            )
        if principal.policy.budgeted and not model.priced:
            raise PermissionDeniedError(
                f"The cost of {model.id} is unknown, and your role ({principal.role}) has a budget: only models "
                f"with a price can be budgeted. Pick a priced model, or ask an admin to price it "
                f'([prices."{model.id}"] in the config file)'
            )

    @staticmethod
    def check_template(principal: Principal, name: str) -> None:
        if not principal.may_use_template(name):
            raise PermissionDeniedError(f"Your role ({principal.role}) may not use the template {name!r}")

    def check_permissions(self, principal: Principal, request: RunRequest, model: ModelInfo) -> None:
        """The model, the template (a request without one is a prompt of the user's own)."""
        if request.template is not None:
            self.check_template(principal, request.template)
        elif not principal.policy.free_prompts:
            raise PermissionDeniedError(
                f"Your role ({principal.role}) may only run templates, not prompts of its own: pick a template"
            )
        self.check_model(principal, model)

    @staticmethod
    def allowed(principal: Principal | None, templates: Iterable[T]) -> list[T]:
        """The templates (or names) `principal` may use, in order; all of them without logins."""
        items = list(templates)
        if principal is None:
            return items
        return [t for t in items if principal.may_use_template(t if isinstance(t, str) else t.name)]

    # -- runs per minute and waiting ---------------------------------------------------------------
    def check_rate(self, principal: Principal, *, count: bool = True) -> None:
        """Refuse a start past the role's runs per minute (`count`: and count this one when it fits)."""
        limit = principal.policy.runs_per_minute
        if limit is None:
            return
        key = f"starts:{principal.user}"
        wait = (self.counters.hit if count else self.counters.peek)(key, limit, RATE_WINDOW)
        if wait:
            seconds = math.ceil(wait)
            raise TooManyRunsError(
                f"You have started {limit} runs in the last minute, the most your role ({principal.role}) "
                f"allows; try again in {seconds} s",
                retry_after=seconds,
            )

    def check_waiting(self, principal: Principal) -> None:
        """Refuse a run that would have to wait while the user's line is full, or whose user's runs on
        other replicas take all of their `max_concurrent_runs`."""
        limit = principal.policy.max_concurrent_runs
        elsewhere = self.shared.elsewhere(principal.user) if limit is not None else 0
        if limit is not None and elsewhere >= limit:
            raise held_elsewhere(principal, limit, elsewhere)
        refusal = self.scheduler.refusal(principal.user, None if limit is None else limit - elsewhere)
        if refusal is not None:
            raise refusal

    def admit(self, principal: Principal, run: Run, *, count: bool) -> Ticket:
        """The last refusals of a start, then its ticket: claim the run's place among its user's runs on
        every replica, take its ticket, and (`count`) count it against runs per minute. Other replicas
        may have counted since `check_waiting` and `check_rate` looked, so each step can still refuse
        (TooManyRunsError); a refused run leaves nothing counted."""
        limit = principal.policy.max_concurrent_runs
        shared = _is_shared(principal)
        elsewhere = self.shared.claim(principal.user, run.id, limit, run.created_at) if shared else 0
        if limit is not None and elsewhere >= limit:
            raise held_elsewhere(principal, limit, elsewhere)  # (claim counted nothing)
        try:
            ticket = self.scheduler.submit(principal.user, None if limit is None else limit - elsewhere)
            try:
                if count:
                    self.check_rate(principal)
            except TooManyRunsError:
                ticket.release()
                raise
        except TooManyRunsError:
            if shared:
                self.shared.release(principal.user, run.id)
            raise
        self.track(principal.user, run)
        return ticket

    # -- runs in flight ----------------------------------------------------------------------------
    def track(self, user: str, run: Run) -> None:
        self._in_flight.setdefault(user, {})[run.id] = run

    def sending(self, run: Run) -> None:
        """The run is about to reach its provider: from now on it costs."""
        self._sending.add(run.id)

    def ended(self, run_id: str) -> None:
        """The run stopped running: other replicas no longer count it against its user's concurrency
        (its cost, now final, counts until the store has it)."""
        for user, runs in self._in_flight.items():
            run = runs.get(run_id)
            if run is not None:
                self.shared.ended(user, run_id, self.cost_so_far(run))
                return

    def forget(self, run_id: str) -> None:
        """The run's end (and cost) is in the store, or there is no store."""
        self._sending.discard(run_id)
        for user, runs in list(self._in_flight.items()):
            if runs.pop(run_id, None) is not None:
                self.shared.release(user, run_id)
                if not runs:
                    del self._in_flight[user]

    def report(self, run_id: str) -> tuple[float, bool] | None:
        """What a run tracked here cost so far and whether it ended (what other replicas are told);
        None once it is forgotten."""
        for runs in self._in_flight.values():
            run = runs.get(run_id)
            if run is not None:
                return self.cost_so_far(run), run.done
        return None

    def in_flight(self, user: str) -> list[Run]:
        return list(self._in_flight.get(user, {}).values())

    def cost_so_far(self, run: Run) -> float:
        if run.id not in self._sending:
            return 0.0
        terminal = run.terminal
        if terminal is not None and terminal.metrics.cost_usd is not None:
            return terminal.metrics.cost_usd
        usage = next((e for e in reversed(run.log) if isinstance(e, Usage)), None)
        if usage is not None and not usage.estimated:
            cost = run.model.cost(usage.input_tokens, usage.cached_input_tokens, usage.output_tokens,
                                  usage.cache_write_tokens)
        else:
            output = estimate_tokens(run.text_so_far()) + estimate_tokens(run.reasoning_so_far())
            cost = run.model.cost(prompt_tokens(run.request), None, output)
        return cost or 0.0

    async def run(self, run: Run, execute: Callable[[bool], Awaitable[None]], ticket: Ticket, principal: Principal,
                  store: RunStore | None) -> None:
        """A login's run: wait for a slot in its user's line (saying so), check the budget (a refusal ends
        the run `failed` before its provider is asked), then `execute(announced)`."""
        announced = False
        try:
            if not ticket.granted:
                run.append(Started(run_id=run.id, model=run.model.id))
                run.append(Notice(message=waiting_message(self.scheduler.state_of(ticket))))
                announced = True
                await ticket.wait()
            refusal = await self._budget_refusal(principal, run, store)
            if refusal is not None:
                if not announced:
                    run.append(Started(run_id=run.id, model=run.model.id))
                run.append(Failed(error_kind=refusal.kind, message=refusal.message, retryable=False,
                                  metrics=Metrics()))
                return
            self.sending(run)
            await execute(announced)
        finally:
            ticket.release()

    async def _budget_refusal(self, principal: Principal, run: Run, store: RunStore | None,
                              ) -> BudgetExceededError | None:
        try:
            await self.check_budget(principal, run.model, run.request, store)
        except BudgetExceededError as error:
            return error
        except Exception:  # unknown spend: a budget is a promise, so the run does not go
            log.warning("could not read what %s spent; run %s refused", principal.user, run.id, exc_info=True)
            return BudgetExceededError("Your budget cannot be checked right now (the run store does not answer), "
                                       "so the run was not sent: try again in a moment", retry_after=5)
        return None

    # -- budgets -----------------------------------------------------------------------------------
    async def spending(self, principal: Principal, store: RunStore | None) -> Spending:
        now = self.clock()
        day, month = periods(now)
        runs = self.in_flight(principal.user)
        others: list[RunElsewhere] = await self.shared.others(principal.user) if _is_shared(principal) else []
        stored = await spent_since(store, principal.user, month_start=month.start, day_start=day.start,
                                   exclude=[run.id for run in runs] + [other.run_id for other in others])
        live = [(run.created_at, self.cost_so_far(run)) for run in runs]
        live += [(other.created_at, other.cost) for other in others]
        live_day = live_month = 0.0
        for created_at, cost in live:
            live_month += cost if created_at >= month.start else 0.0
            live_day += cost if created_at >= day.start else 0.0
        policy = principal.policy
        return Spending(user=principal.user, day=stored.day + live_day, month=stored.month + live_month,
                        daily_budget=policy.daily_budget, monthly_budget=policy.monthly_budget,
                        in_flight=live_day, day_resets=day.resets, month_resets=month.resets)

    async def check_budget(self, principal: Principal, model: ModelInfo, request: RunRequest,
                           store: RunStore | None) -> None:
        """Refuse a run that would start over the role's daily or monthly budget."""
        policy = principal.policy
        if not policy.budgeted:
            return
        spending = await self.spending(principal, store)
        now = self.clock()
        day, month = periods(now)
        own = model.cost(prompt_tokens(request), None, 0) or 0.0
        free = model.input_price == 0 and model.output_price == 0
        # The month first: when both are spent, the later reset is the one that lets the run start.
        for period, spent, budget in ((month, spending.month, policy.monthly_budget),
                                      (day, spending.day, policy.daily_budget)):
            if budget is None:
                continue
            if spent + own > budget or (spent >= budget and not free):
                raise BudgetExceededError(budget_sentence(spent, budget, period, now, spending.in_flight),
                                          retry_after=math.ceil(period.resets - now))

    # -- evaluations -------------------------------------------------------------------------------
    def check_evaluation(self, principal: Principal, *, cases: int, models: int, repeats: int = 1,
                         grading_runs: int = 0) -> int:
        """Refuse an evaluation larger than the role allows, before it starts; counts as one start
        against runs per minute (its cells do not, one by one). The number of runs it makes."""
        total = cases * models * repeats + grading_runs
        limit = principal.policy.max_evaluation_runs
        if limit is not None and total > limit:
            shape = f"{cases:,} case{'s' if cases != 1 else ''} × {models} model{'s' if models != 1 else ''}"
            if repeats != 1:
                shape += f" × {repeats} repeats"
            if grading_runs:
                shape += f" + {grading_runs:,} grading runs"
            raise EvaluationTooLargeError(
                f"This evaluation would make {total:,} runs ({shape}), more than your role ({principal.role}) "
                f"allows in one evaluation ({limit:,}): use fewer cases or models"
            )
        self.check_rate(principal)
        return total


def _is_shared(principal: Principal) -> bool:
    """Do the login's runs count across replicas (a concurrency limit or a budget to keep)?"""
    return principal.policy.max_concurrent_runs is not None or principal.policy.budgeted


def prompt_tokens(request: RunRequest) -> int:
    """The request's input as the budget estimates it before the provider counts it."""
    return estimate_tokens((request.system or "") + "".join(m.content for m in request.messages))
