"""The service: start runs, read their events, stop them, keep them. Knows nothing about any UI.

    service = await LLMService.open()           # settings from env + config file, runs kept in the store
    run = service.start(RunRequest(model="demo:assistant", prompt="Hello"), RunOrigin(user="ann"))
    async for event in run.events():            # any number of readers, from any position
        ...
    run.cancel()                                # closes the provider connection, ends with `stopped`
    async for event in service.replay(run_id):  # a run of any age: live from memory, else from the store

`start` raises a `UsageError` (clear message) for a bad request before anything is sent.

With a store (`open`, or `attach_store`) only running runs stay in memory: a run leaves it once its
terminal event is written, and the store answers for it from then on. Without one (`LLMService()`,
for library use and tests) the newest `max_runs` stay in memory and nothing is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator

from llmtool.catalog import Catalog, ModelInfo
from llmtool.errors import InvalidRequestError
from llmtool.events import RunEvent
from llmtool.providers import ProviderPool
from llmtool.providers.base import ReasoningEffort
from llmtool.providers.registry import spec_for
from llmtool.redact import Redactor
from llmtool.service.executor import RunExecutor
from llmtool.service.model_lists import ModelLists
from llmtool.service.recorder import RunRecorder
from llmtool.service.requests import RunRequest
from llmtool.service.runs import Run
from llmtool.settings import Settings, Timeouts, load_settings
from llmtool.store import RunOrigin, RunRecord, RunStore, open_store
from llmtool.validation import check_python_rule

__all__ = ["LLMService", "Run", "RunOrigin", "RunRequest"]
log = logging.getLogger(__name__)


class LLMService:
    def __init__(self, settings: Settings | None = None, max_runs: int = 1000) -> None:
        self.settings = settings or load_settings()
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

    @classmethod
    async def open(cls, settings: Settings | None = None) -> LLMService:
        """The service with its run store (`settings.database_url`) opened, migrated and recording.
        Raises `StoreError` (a clear message) when the store cannot be opened."""
        service = cls(settings)
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
        Idempotency-Key was tied to it); by default a new one."""
        request, model, timeouts = self.check(request)
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
        executor = RunExecutor(
            run, self.providers.for_model(model), timeouts, self.settings.retry, self.redactor,
            native_schema=capabilities.structured_output and f"schema:{model.id}" not in self._refusals,
            cache_prompt=cache_prompt and capabilities.prompt_cache,
            learn_model=learn,
            reasoning_summary=f"summary:{model.provider}" not in self._refusals,
            remember=self._refusals.add,
        )
        if self.recorder is not None:
            self.recorder.track(run, origin or RunOrigin())
        loop = asyncio.get_running_loop()
        run.attach(loop.create_task(executor.execute(), name=f"run-{run.id}"))
        self._remember(run)
        limit = self.settings.runs.stop_unwatched_after
        if limit is not None:
            watchdog = loop.create_task(_stop_when_unwatched(run, limit), name=f"watch-{run.id}")
            self._watchdogs.add(watchdog)
            watchdog.add_done_callback(self._watchdogs.discard)
        return run

    async def _learn(self, model: ModelInfo) -> ModelInfo:
        """The model as its provider's (cached) list describes it; as it was when the list lacks it."""
        listed = await self.model_lists.for_provider(model.provider)
        return next((m for m in listed.models if m.name == model.name), model)

    def check(self, request: RunRequest | dict) -> tuple[RunRequest, ModelInfo, Timeouts]:
        """Everything `start` refuses, without starting: the parsed request, its model and its
        timeouts, or a `UsageError` with the sentence to show."""
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
