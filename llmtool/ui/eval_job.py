"""One evaluation started from the Evaluate tab, running in a task of its own.

    job = EvalJob(service, template, dataset, models, concurrency=4, dataset_name="prompts/datasets/x.csv",
                  failures_only=False, user=login, repeats=3)
    async for result in job.new_results(): ...     # each run's result as it finishes, until it ends
    await job.cancel()                              # Stop: the runs in flight close their connections

Its `id` is the evaluation's id in the run store (and so in its permalink). Stop, Gradio cancelling
the event, or the page going away all cancel it the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path
from typing import TYPE_CHECKING

from llmtool.errors import UsageError
from llmtool.evaluation import CaseResult, Dataset, evaluate
from llmtool.service import LLMService, RunOrigin
from llmtool.service.runs import new_run_id
from llmtool.templates import Template
from llmtool.ui import handlers as chat_handlers
from llmtool.ui.eval_table import EvalState

if TYPE_CHECKING:
    from llmtool.evaluation.baseline import Cell
    from llmtool.store import EvaluationRecord

log = logging.getLogger(__name__)


class EvalJob:
    """One evaluation, running in its own task; `new_results()` follows it until it ends."""

    def __init__(self, service: LLMService, template: Template, dataset: Dataset, models: list[str],
                 concurrency: int, dataset_name: str, failures_only: bool, user: str | None = None, *,
                 repeats: int = 1) -> None:
        self.id = new_run_id()
        self.template, self.dataset, self.models = template, dataset, models
        self.dataset_name, self.failures_only = dataset_name, failures_only
        self.changed_only = False
        self.repeats = repeats
        self.total = len(dataset.cases) * len(models) * repeats
        self.results: list[CaseResult] = []
        self.passed = 0
        self.error = ""
        self.exports: tuple[Path, Path] | None = None
        # What the charts draw it against while it runs (the stored baseline's cells), if anything.
        self.baseline: tuple[EvaluationRecord, list[Cell]] | None = None
        self.baseline_choice = ""
        self._loop = asyncio.get_running_loop()
        self.started = self._loop.time()
        self.ended: float | None = None
        self._queue: asyncio.Queue[CaseResult | None] = asyncio.Queue()
        self.user = user
        self.task = asyncio.create_task(self._consume(service, concurrency), name="evaluation")
        self.task.add_done_callback(self._done)

    async def _consume(self, service: LLMService, concurrency: int) -> None:
        steps = evaluate(service, self.template, self.dataset, self.models, concurrency=concurrency,
                         origin=RunOrigin(user=self.user), evaluation_id=self.id, repeat=self.repeats)
        async with aclosing(steps):
            async for step in steps:
                self.results.append(step.result)
                self.passed = step.passed
                self._queue.put_nowait(step.result)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.ended = self._loop.time()
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            log.error("evaluation failed", exc_info=error)
            self.error = error.message if isinstance(error, UsageError) else "llmtool failed unexpectedly"
        self._queue.put_nowait(None)

    async def new_results(self) -> AsyncIterator[CaseResult]:
        while (result := await self._queue.get()) is not None:
            yield result

    @property
    def state(self) -> EvalState:
        if not self.task.done():
            return "running"
        return "stopped" if self.task.cancelled() or self.error else "done"

    @property
    def elapsed(self) -> float:
        return (self.ended or self._loop.time()) - self.started

    async def cancel(self, timeout: float | None = None) -> None:
        """Stop the evaluation; returns once every run in flight has closed its connection, or after
        `timeout` seconds (STOP_GRACE: Stop must answer even if a provider client ignores the
        cancellation)."""
        timeout = chat_handlers.STOP_GRACE if timeout is None else timeout
        self.task.cancel()
        try:
            async with asyncio.timeout(timeout):
                await asyncio.wait([self.task])
        except TimeoutError:
            log.warning("an evaluation still ending %.1f s after it was stopped", timeout)
