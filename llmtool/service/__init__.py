"""The service: start runs, read their events, stop them, keep them. Knows nothing about any UI.

    service = await LLMService.open()           # settings from env + config file, runs kept in the store
    run = service.start(RunRequest(model="demo:assistant", prompt="Hello"), RunOrigin(user="ann"))
    async for event in run.events():            # any number of readers, from any position
        ...
    run.cancel()                                # closes the provider connection, ends with `stopped`
    async for event in service.replay(run_id):  # a run of any age: live from memory, else from the store

`start` raises a `UsageError` (clear message) for a bad request before anything is sent.

Logins (`principals`: login name → `Principal`, given by the composition root; None: no logins, no
limits) make `start` the one place every surface's runs are checked against the login's role: its
models, templates and prompts (`PermissionDeniedError`), runs per minute and runs waiting
(`TooManyRunsError`, with `retry_after`), and, in the run's task before its provider is asked, its
budgets (the run ends `failed` with the budget sentence, having cost nothing). A surface that wants the
budget refusal before any run exists (the API's 429) awaits `check_limits` first, or calls `submit`.
A login's runs go through the fair scheduler (`scheduler.py`): beyond their share they wait, saying so.

With a store (`open`, or `attach_store`) only running runs stay in memory: a run leaves it once its
terminal event is written, and the store answers for it from then on. Without one (`LLMService()`,
for library use and tests) the newest `max_runs` stay in memory and nothing is kept.

Shutting down cleanly (`drain`, on SIGTERM): `draining` is set at once, so `check` (and with it `start`)
refuses new runs with `ServerDrainingError` (the API's 503); running runs get up to a grace period to
finish, and those still running then end `interrupted`, their text kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING

from llmtool.catalog import Catalog, ModelInfo
from llmtool.errors import InvalidRequestError, PermissionDeniedError, ServerDrainingError
from llmtool.events import RunEvent
from llmtool.providers import ProviderPool
from llmtool.providers.base import ReasoningEffort
from llmtool.providers.registry import spec_for
from llmtool.redact import Redactor
from llmtool.service.counters import Counters
from llmtool.service.executor import RunExecutor
from llmtool.service.limits import Limits, Spending, T
from llmtool.service.model_lists import ModelLists
from llmtool.service.recorder import RunRecorder
from llmtool.service.requests import RunRequest
from llmtool.service.runs import Run
from llmtool.service.scheduler import Ticket
from llmtool.settings import Settings, Timeouts, load_settings
from llmtool.store import RunOrigin, RunRecord, RunStore, open_store
from llmtool.store.usage import DailyUsage, daily_usage
from llmtool.validation import check_python_rule

if TYPE_CHECKING:
    from llmtool.accounts.principal import Principal

__all__ = ["LLMService", "Run", "RunOrigin", "RunRequest"]
log = logging.getLogger(__name__)
Principals = Callable[[str], "Principal | None"]
BATCH_SOURCES = frozenset({"evaluation", "grading"})  # runs of an evaluation, counted when it starts
DRAINING = "the server is draining (shutting down): start the run again in a moment, another server takes it"
DRAIN_INTERRUPTED = "the server shut down before this run ended; the text it had written is kept"


class LLMService:
    def __init__(self, settings: Settings | None = None, max_runs: int = 1000, *,
                 principals: Principals | None = None, counters: Counters | None = None) -> None:
        self.settings = settings or load_settings()
        # Who a login is and what their role allows; None: no logins, nothing limited.
        self.principals = principals
        self.limits = Limits(self.settings.runs, counters)
        self.catalog = Catalog(self.settings)
        self.providers = ProviderPool(self.settings, self.catalog)
        self.model_lists = ModelLists(self.catalog, self.providers, self.settings.model_list_ttl)
        self.redactor = Redactor.from_settings(self.settings)
        self.max_runs = max_runs
        self.store: RunStore | None = None
        self.recorder: RunRecorder | None = None
        self._runs: OrderedDict[str, Run] = OrderedDict()
        self._watchdogs: set[asyncio.Task[None]] = set()
        # What providers refused that runs then did without ("schema:MODEL", "summary:PROVIDER"),
        # so later runs do not ask again and pay a round trip and a notice each time.
        self._refusals: set[str] = set()
        # Set by `drain` (SIGTERM): no new run starts here; running ones finish, up to a grace period.
        self.draining = False

    @classmethod
    async def open(cls, settings: Settings | None = None, *, principals: Principals | None = None) -> LLMService:
        """The service with its run store (`settings.database_url`) opened, migrated and recording.
        Raises `StoreError` (a clear message) when the store cannot be opened."""
        service = cls(settings, principals=principals)
        await service.attach_store(await open_store(service.settings.database_url))
        return service

    async def attach_store(self, store: RunStore) -> list[str]:
        """Keep every run from now on in `store`; runs of processes that died are marked interrupted
        (their ids are returned)."""
        self.store = store
        self.recorder = RunRecorder(store, self.settings.store, self.settings.store.retention_days,
                                    on_saved=self._forget, mask=self.redactor.mask_secrets)
        return await self.recorder.start()

    @property
    def store_problem(self) -> str | None:
        """A sentence for the UI while the store fails to save runs; None when all is well."""
        return self.recorder.problem if self.recorder is not None else None

    def models(self) -> list[ModelInfo]:
        """Usable models known without asking anyone: configured providers', plus the offline demo."""
        return self.catalog.usable()

    async def model_ids(self) -> list[str]:
        """Usable models as the providers list them now (cached), configured ones where they cannot."""
        return await self.model_lists.model_ids()

    def default_model(self) -> str:
        return self.catalog.default_model()

    def start(self, request: RunRequest | dict, origin: RunOrigin | None = None, run_id: str | None = None) -> Run:
        """Validate the request and start its run in the background on the running loop; `origin`
        says who started it from where (kept with the run). `run_id`: an id chosen beforehand (an
        Idempotency-Key was tied to it); by default a new one. With logins, `origin.user`'s role
        decides what may start (see the module's docstring)."""
        request, model, timeouts = self.check(request, origin)
        principal = self.principal(origin.user if origin is not None else None)
        # An evaluation's runs count once against runs per minute, when it starts (check_evaluation).
        counted = principal is not None and origin is not None and origin.source not in BATCH_SOURCES
        if principal is not None:
            if counted:
                self.limits.check_rate(principal, count=False)
            self.limits.check_waiting(principal)
        capabilities = spec_for(model.kind).capabilities
        effort = request.reasoning_effort
        thinks = effort not in (None, "none") or bool(effort is None and model.efforts)
        if thinks and not capabilities.signals_thinking:
            # Its silence may be thinking: give the first token as long as a pause in thinking.
            first_token = min(max(timeouts.first_token, timeouts.reasoning_idle), timeouts.total)
            timeouts = timeouts.model_copy(update={"first_token": first_token})
        run = Run(request, model, run_id)
        cache_prompt = self.settings.cache_prompts if request.cache_prompt is None else request.cache_prompt
        learn = None
        if request.reasoning_effort is not None and model.efforts is None and capabilities.lists_capabilities:
            learn = functools.partial(self._learn, model)
        provider = self.providers.for_model(model)

        def executor(announced: bool) -> RunExecutor:
            return RunExecutor(
                run, provider, timeouts, self.settings.retry, self.redactor,
                native_schema=capabilities.structured_output and f"schema:{model.id}" not in self._refusals,
                cache_prompt=cache_prompt and capabilities.prompt_cache,
                learn_model=learn,
                reasoning_summary=f"summary:{model.provider}" not in self._refusals,
                remember=self._refusals.add,
                announced=announced,
            )

        loop = asyncio.get_running_loop()
        ticket: Ticket | None = None
        if principal is not None:  # the last refusals (counts other replicas share); nothing below refuses
            ticket = self.limits.admit(principal, run, count=counted)
        if self.recorder is not None:
            self.recorder.track(run, origin or RunOrigin())
        if principal is None:
            task = loop.create_task(executor(False).execute(), name=f"run-{run.id}")
        else:
            assert ticket is not None
            task = loop.create_task(
                self.limits.run(run, lambda announced: executor(announced).execute(), ticket, principal, self.store),
                name=f"run-{run.id}",
            )
            # Also when the task is cancelled before its first step (its `finally` never runs).
            task.add_done_callback(lambda _: self._limited_done(ticket, run.id))
        run.attach(task)
        self._remember(run)
        limit = self.settings.runs.stop_unwatched_after
        if limit is not None:
            watchdog = loop.create_task(_stop_when_unwatched(run, limit), name=f"watch-{run.id}")
            self._watchdogs.add(watchdog)
            watchdog.add_done_callback(self._watchdogs.discard)
        return run

    def _limited_done(self, ticket: Ticket, run_id: str) -> None:
        ticket.release()  # the slot (or the place in line) goes to the next run at once
        self.limits.ended(run_id)  # other replicas' count of the user's runs too
        if self.recorder is None:
            self.limits.forget(run_id)  # no store to wait for

    # -- logins: who may do what, and what they spent ------------------------------------------------
    def principal(self, user: str | None) -> Principal | None:
        """The login's principal; None without logins (or for a run made without one: the CLI).
        `PermissionDeniedError` for a login the accounts no longer know."""
        if user is None or self.principals is None:
            return None
        found = self.principals(user)
        if found is None:
            raise PermissionDeniedError(f"The login {user!r} is not known here any more: log in again")
        return found

    def allowed_models(self, user: str | None) -> list[ModelInfo]:
        """`models()` as `user`'s role may use them (priced ones only for a role with a budget)."""
        principal = self.principal(user)
        return [m for m in self.models() if principal is None or self.limits.allows_model(principal, m)]

    async def allowed_model_ids(self, user: str | None) -> list[str]:
        """`model_ids()` (the providers' live lists) as `user`'s role may use them."""
        principal = self.principal(user)
        ids = await self.model_ids()
        if principal is None:
            return ids
        allowed = []
        for model_id in ids:
            try:
                model = self.catalog.resolve(model_id)
            except Exception:  # listed but not usable here: not offered
                continue
            if self.limits.allows_model(principal, model):
                allowed.append(model_id)
        return allowed

    def allowed_templates(self, user: str | None, templates: Iterable[T]) -> list[T]:
        """The templates (objects with a `name`, or names) `user`'s role may use, in order."""
        return self.limits.allowed(self.principal(user), templates)

    def may_write_prompts(self, user: str | None) -> bool:
        """May `user` send prompts of their own (else only templates: hide the free prompt box)?"""
        principal = self.principal(user)
        return principal is None or principal.policy.free_prompts

    def may_upload(self, user: str | None) -> bool:
        """May `user` upload datasets (Evaluate)?"""
        principal = self.principal(user)
        return principal is None or principal.policy.uploads

    def may_see_usage(self, user: str | None) -> bool:
        """May `user` see everyone's usage (the admin view: `usage`)? Without logins, yes."""
        principal = self.principal(user)
        return principal is None or principal.policy.manage_users

    async def check_limits(self, request: RunRequest | dict, origin: RunOrigin | None = None) -> None:
        """Everything `start` would refuse for this login now, budgets included (which need the store),
        counting nothing: a surface that answers a refusal itself (the API's 429) calls it first."""
        request, model, _ = self.check(request, origin)
        principal = self.principal(origin.user if origin is not None else None)
        if principal is None:
            return
        assert origin is not None
        if origin.source not in BATCH_SOURCES:
            self.limits.check_rate(principal, count=False)
        self.limits.check_waiting(principal)
        await self.limits.check_budget(principal, model, request, self.store)

    async def submit(self, request: RunRequest | dict, origin: RunOrigin | None = None,
                     run_id: str | None = None) -> Run:
        """`check_limits`, then `start`: every refusal is raised, none becomes a failed run."""
        await self.check_limits(request, origin)
        return self.start(request, origin, run_id)

    def check_evaluation(self, origin: RunOrigin | None, *, template: str, models: Iterable[str],
                         cases: int, repeats: int = 1, grading_runs: int = 0) -> None:
        """Refuse, before it starts, an evaluation `origin.user`'s role does not allow: its template, a
        model, or more runs than `max_evaluation_runs` (the refusal gives the numbers). It counts as
        one start against runs per minute; its cells and grading runs then do not, one by one."""
        principal = self.principal(origin.user if origin is not None else None)
        if principal is None:
            return
        self.limits.check_template(principal, template)
        chosen = list(models)
        for model_id in chosen:
            self.limits.check_model(principal, self.catalog.resolve(model_id))
        self.limits.check_evaluation(principal, cases=cases, models=len(chosen), repeats=repeats,
                                     grading_runs=grading_runs)

    async def spending(self, user: str) -> Spending | None:
        """What `user` spent today and this month against their role's budgets; None without logins."""
        principal = self.principal(user)
        return None if principal is None else await self.limits.spending(principal, self.store)

    async def usage(self, days: int = 7, user: str | None = None) -> list[DailyUsage]:
        """Runs and spend per user per UTC day, the last `days` days (today included), from the store:
        the admin view: show it only to whom `may_see_usage` allows."""
        midnight = time.time() // 86400 * 86400
        return await daily_usage(self.store, since=midnight - (max(days, 1) - 1) * 86400, user=user)

    async def _learn(self, model: ModelInfo) -> ModelInfo:
        """The model as its provider's (cached) list describes it; as it was when the list lacks it."""
        listed = await self.model_lists.for_provider(model.provider)
        return next((m for m in listed.models if m.name == model.name), model)

    def check(self, request: RunRequest | dict, origin: RunOrigin | None = None,
              ) -> tuple[RunRequest, ModelInfo, Timeouts]:
        """What `start` refuses about the request itself, without starting: the parsed request, its
        model and its timeouts, or a `UsageError` with the sentence to show. With `origin`'s login:
        what the role allows too (not its limits: `check_limits`)."""
        if self.draining:
            raise ServerDrainingError(DRAINING)
        request = RunRequest.parse(request)
        if request.validation.python is not None:
            try:
                check_python_rule(request.validation.python, self.settings.validator_modules)
            except ValueError as exc:
                raise InvalidRequestError(str(exc)) from None
        model = self.catalog.resolve(request.model or self.default_model())
        self.check_effort(model, request.reasoning_effort, request.max_output_tokens)
        timeouts = request.timeouts.apply(self.settings.timeouts)
        if timeouts.first_token > timeouts.total:
            raise InvalidRequestError(
                f"the first-token timeout ({timeouts.first_token:g} s) is longer than the total "
                f"limit ({timeouts.total:g} s)"
            )
        principal = self.principal(origin.user if origin is not None else None)
        if principal is not None:
            self.limits.check_permissions(principal, request, model)
        return request, model, timeouts

    @staticmethod
    def check_effort(model: ModelInfo, effort: ReasoningEffort | None, max_output_tokens: int | None) -> None:
        """Refuse a reasoning effort the model is known not to take, or an output limit that
        leaves it no room to think."""
        model.check_effort(effort)
        if model.kind == "anthropic" and effort not in (None, "none"):
            from llmtool.providers.anthropic import thinking_config

            thinking_config(effort, model.thinking, max_output_tokens, model.max_output_tokens)

    def get(self, run_id: str) -> Run | None:
        """The run if it is in this process's memory (running, or just ended and not yet stored)."""
        return self._runs.get(run_id)

    def runs(self) -> list[Run]:
        return list(self._runs.values())

    def running(self) -> list[Run]:
        return [run for run in self._runs.values() if not run.done]

    async def record(self, run_id: str) -> RunRecord | None:
        """The stored record of a run (running ones included, as of the last write)."""
        return await self.store.get_run(run_id) if self.store is not None else None

    async def replay(self, run_id: str, start: int = 0) -> AsyncIterator[RunEvent]:
        """A run's events from position `start` on: live (waiting for more) while this process runs
        it, else as stored. Nothing is yielded for an unknown run."""
        run = self.get(run_id)
        if run is not None:
            async with contextlib.aclosing(run.events(after=start)) as events:
                async for event in events:
                    yield event
            return
        if self.store is not None:
            for event in await self.store.events(run_id, start):
                yield event

    def _forget(self, run_id: str) -> None:
        """The run's end is stored: the store answers for it from now on."""
        self.limits.forget(run_id)
        run = self._runs.get(run_id)
        if run is not None and run.done:
            del self._runs[run_id]

    def _remember(self, run: Run) -> None:
        self._runs[run.id] = run
        if self.recorder is not None:
            return  # runs leave memory once stored (_forget)
        while len(self._runs) > self.max_runs:
            oldest = next((r for r in self._runs.values() if r.done), None)
            if oldest is None:
                break
            del self._runs[oldest.id]

    async def drain(self, grace: float) -> list[str]:
        """Take no new run from now on; wait up to `grace` seconds for the running ones to end, then
        interrupt the rest (they end `interrupted`, text kept). The ids of the runs interrupted."""
        self.draining = True
        running = self.running()
        if running:
            log.info("draining: waiting up to %g s for %d running run(s)", grace, len(running))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await asyncio.gather(*(run.wait() for run in running))
        interrupted = [run for run in self.running() if run.interrupt(DRAIN_INTERRUPTED)]
        for run in interrupted:
            await run.wait()
        if interrupted:
            log.warning("draining: %d run(s) still running after %g s were interrupted", len(interrupted), grace)
        return [run.id for run in interrupted]

    async def aclose(self) -> None:
        """Stop every running run, write what the store lacks, close the store and the provider clients."""
        running = [run for run in self._runs.values() if run.cancel()]
        for run in running:
            await run.wait()
        for watchdog in list(self._watchdogs):
            watchdog.cancel()
        if self.recorder is not None:
            await self.recorder.aclose()
            self.recorder = None
        if self.store is not None:
            await self.store.aclose()
            self.store = None
        await self.providers.aclose()


async def _stop_when_unwatched(run: Run, limit: float) -> None:
    """Stop `run` once nobody has read its events for `limit` seconds."""
    while not run.done:
        await asyncio.sleep(min(1.0, limit / 4))
        since = run.unwatched_since
        if since is not None and time.monotonic() - since >= limit and run.cancel():
            log.info("run %s stopped: nobody watched it for %g s", run.id, limit)
            return
