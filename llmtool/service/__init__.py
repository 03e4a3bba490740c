"""The service: start runs, read their events, stop them. Knows nothing about any UI.

    service = LLMService()                      # settings from env + config file
    run = service.start(RunRequest(model="demo:assistant", prompt="Hello"))
    async for event in run.events():            # any number of readers, from any position
        ...
    run.cancel()                                # closes the provider connection, ends with `stopped`

`start` raises a `UsageError` (clear message) for a bad request before anything is sent.
Runs live in memory, the newest `max_runs` kept.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from llmtool.catalog import Catalog, ModelInfo
from llmtool.errors import InvalidRequestError
from llmtool.providers import ProviderPool
from llmtool.service.executor import RunExecutor
from llmtool.service.requests import RunRequest
from llmtool.service.runs import Run
from llmtool.settings import Settings, load_settings
from llmtool.validation import check_python_rule

__all__ = ["LLMService", "Run", "RunRequest"]


class LLMService:
    def __init__(self, settings: Settings | None = None, max_runs: int = 1000) -> None:
        self.settings = settings or load_settings()
        self.catalog = Catalog(self.settings)
        self.providers = ProviderPool(self.settings, self.catalog)
        self.max_runs = max_runs
        self._runs: OrderedDict[str, Run] = OrderedDict()

    def models(self) -> list[ModelInfo]:
        """Usable models: those of configured providers, plus the offline demo."""
        return self.catalog.usable()

    def default_model(self) -> str:
        return self.catalog.default_model()

    def start(self, request: RunRequest | dict) -> Run:
        """Validate the request and start its run in the background on the running loop."""
        request = RunRequest.parse(request)
        if request.validation.python is not None:
            try:
                check_python_rule(request.validation.python, self.settings.validator_modules)
            except ValueError as exc:
                raise InvalidRequestError(str(exc)) from None
        model = self.catalog.resolve(request.model or self.default_model())
        timeouts = request.timeouts.apply(self.settings.timeouts)
        if timeouts.first_token > timeouts.total:
            raise InvalidRequestError(
                f"the first-token timeout ({timeouts.first_token:g} s) is longer than the total "
                f"limit ({timeouts.total:g} s)"
            )
        run = Run(request, model)
        executor = RunExecutor(run, self.providers.for_model(model), timeouts, self.settings.retry)
        run.attach(asyncio.get_running_loop().create_task(executor.execute(), name=f"run-{run.id}"))
        self._remember(run)
        return run

    def get(self, run_id: str) -> Run | None:
        return self._runs.get(run_id)

    def runs(self) -> list[Run]:
        return list(self._runs.values())

    def _remember(self, run: Run) -> None:
        self._runs[run.id] = run
        while len(self._runs) > self.max_runs:
            oldest = next((r for r in self._runs.values() if r.done), None)
            if oldest is None:
                break
            del self._runs[oldest.id]

    async def aclose(self) -> None:
        """Stop every running run and close the provider clients."""
        running = [run for run in self._runs.values() if run.cancel()]
        for run in running:
            await run.wait()
        await self.providers.aclose()
