"""The Evaluate tab: a template over a dataset × models, pass/fail per cell, exported as CSV/JSONL.

    evaluate.build(context, concurrency)     # inside a gr.Tab: lays out the tab and wires it

The dataset is one of `prompts/datasets/*` (picked by name from the listing, never a path typed
by the user) or an uploaded .csv/.jsonl. The matrix runs in a task of its own (`EvalJob`), so Stop,
Gradio cancelling the event, or the page going away all cancel it the same way: the runs in flight
are cancelled and their provider connections close. The handler shows progress at most once per
`update_interval` ("Running · 12/40 done · 2 failed"); export files go to a temp directory of ours.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from llmtool.errors import InvalidRequestError, UsageError
from llmtool.evaluation import CaseResult, Dataset, DatasetError, EvalReport, build_report, evaluate, load_dataset_async
from llmtool.evaluation.dataset import DATASET_SUFFIXES
from llmtool.evaluation.runner import resolve_models
from llmtool.service import LLMService, RunOrigin
from llmtool.templates import Template
from llmtool.ui import handlers as chat_handlers
from llmtool.ui import inputs
from llmtool.ui.eval_table import (
    EvalState,
    dataset_problems_markdown,
    export_stem,
    matrix,
    progress_line,
    summary_markdown,
)
from llmtool.ui.streams import batches, streaming_options
from llmtool.ui.template_fields import chosen, error_markdown
from llmtool.ui.template_panel import choices, template_dropdown
from llmtool.ui.uploads import UPLOAD_REFUSED, UploadBox, uploaded_file
from llmtool.web.context import AppContext

log = logging.getLogger(__name__)

MAX_CONCURRENCY = 16
_KEPT_JOBS = 32  # finished evaluations kept for Stop and the failures filter to read


class EvalJob:
    """One evaluation, running in its own task; `new_results()` follows it until it ends."""

    def __init__(self, service: LLMService, template: Template, dataset: Dataset, models: list[str],
                 concurrency: int, dataset_name: str, failures_only: bool, user: str | None = None) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.template, self.dataset, self.models = template, dataset, models
        self.dataset_name, self.failures_only = dataset_name, failures_only
        self.total = len(dataset.cases) * len(models)
        self.results: list[CaseResult] = []
        self.passed = 0
        self.error = ""
        self.exports: tuple[Path, Path] | None = None
        self._loop = asyncio.get_running_loop()
        self.started = self._loop.time()
        self.ended: float | None = None
        self._queue: asyncio.Queue[CaseResult | None] = asyncio.Queue()
        self.user = user
        self.task = asyncio.create_task(self._consume(service, concurrency), name="evaluation")
        self.task.add_done_callback(self._done)

    async def _consume(self, service: LLMService, concurrency: int) -> None:
        steps = evaluate(service, self.template, self.dataset, self.models, concurrency=concurrency,
                         origin=RunOrigin(user=self.user))
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


@dataclass
class EvalUpdate:
    """One page update; None leaves that output as it is."""

    progress: str | None = None
    summary: str | None = None
    table: dict | None = None
    exports: tuple[Path, Path] | None = None
    hide_exports: bool = False
    report: EvalReport | None = None
    eval_id: str | None = None
    running: bool | None = None

    def outputs(self) -> tuple[Any, ...]:
        def value(v: Any) -> Any:
            return gr.skip() if v is None else v

        downloads: tuple[Any, Any] = (gr.skip(), gr.skip())
        if self.exports is not None:
            csv_file, jsonl_file = self.exports
            downloads = (gr.update(value=str(csv_file), visible=True), gr.update(value=str(jsonl_file), visible=True))
        elif self.hide_exports:
            downloads = (gr.update(visible=False), gr.update(visible=False))
        controls: tuple[Any, Any] = (gr.skip(), gr.skip())
        if self.running is not None:
            controls = (gr.update(visible=not self.running), gr.update(visible=self.running))
        return (value(self.progress), value(self.summary), value(self.table), *downloads,
                value(self.report), value(self.eval_id), *controls)


class EvalHandlers:
    def __init__(self, context: AppContext) -> None:
        self.context = context
        self._jobs: OrderedDict[str, EvalJob] = OrderedDict()

    async def run(
        self, template: str | None, dataset: str | None = None, upload: str | None = None,
        models: list[str] | None = None, concurrency: float = 4, failures_only: bool = False,
        request: gr.Request | None = None,
    ) -> AsyncIterator[tuple[Any, ...]]:
        """Evaluate the template over the dataset × models; stream progress and the table."""
        try:
            job = await self._start(template, dataset, upload, inputs.names(models, "models"), concurrency,
                                    inputs.flag(failures_only, "failures only"), user=chat_handlers.login(request))
        except DatasetError as error:
            shown, actual = self._dataset_names(dataset, upload)
            message = dataset_problems_markdown(error.problems, shown, actual)
            log.info("refused an evaluation: %s", self.context.redact(error.problems[0] if error.problems else
                                                                        "the dataset has problems"))
            yield EvalUpdate(progress=self.context.redact(message), running=False).outputs()
            return
        except UsageError as error:
            log.info("refused an evaluation: %s", self.context.redact(error.message))
            yield EvalUpdate(progress=error_markdown(self.context.redact(error.message)), running=False).outputs()
            return
        except Exception:  # a bug of ours: say so, keep the traceback in the server log
            log.exception("could not start an evaluation")
            yield EvalUpdate(progress=error_markdown("llmtool failed unexpectedly; the server log has the details."),
                             running=False).outputs()
            return
        eval_id = job.id
        self._keep(eval_id, job)
        self.context.stream_started(eval_id)
        try:
            first = self._render(job, final=False)
            first.eval_id, first.running, first.hide_exports = eval_id, True, True
            yield first.outputs()
            updates = batches(job.new_results(), self.context.update_interval)
            async with aclosing(updates):
                async for _ in updates:
                    yield self._render(job, final=False).outputs()
            yield self._render(job, final=True).outputs()
        finally:
            await job.cancel()  # no-op once it ended; otherwise cancels the runs in flight
            self.context.stream_ended(eval_id)

    async def stop(self, eval_id: str | None = None) -> tuple[Any, ...]:
        """Stop the evaluation: runs in flight are cancelled; the table keeps what finished."""
        job = self._jobs.get(eval_id or "")
        if job is None:
            return EvalUpdate(running=False).outputs()
        await job.cancel()
        await self.context.wait_stream_ended(eval_id or "", chat_handlers.STOP_GRACE)
        return self._render(job, final=True).outputs()

    def filter(self, report: EvalReport | None, failures_only: bool, eval_id: str | None = None) -> Any:
        """The failures-only box: the table of the last evaluation, filtered (or not)."""
        job = self._jobs.get(eval_id or "")
        if job is not None:
            job.failures_only = bool(failures_only)  # a running evaluation keeps the choice
            return _table(self._report(job), bool(failures_only), running=job.state == "running")
        if report is None:
            return gr.skip()
        return _table(report, bool(failures_only), running=False)

    def pick_template(self, template: str | None, upload: str | None) -> Any:
        """A template was picked: offer its dataset (datasets/<name>.csv or <name>.*.jsonl)."""
        name = chosen(template)
        listed = self.datasets()
        if upload or name is None:
            return gr.update(choices=listed)
        mine = [d for d in listed if d.split(".")[0] == name]
        return gr.update(choices=listed, value=mine[0] if mine else None)

    def refresh(self, template: str | None, dataset: str | None) -> tuple[Any, Any]:
        """↻: list the templates and the shipped datasets again."""
        listed = choices(self.context, with_none=False)
        if template not in {value for _, value in listed}:
            template = listed[0][1] if listed else None
        shipped = self.datasets()
        return (gr.update(choices=listed, value=template),
                gr.update(choices=shipped, value=dataset if dataset in shipped else None))

    def datasets(self) -> list[str]:
        """The dataset files shipped beside the templates, by file name."""
        try:
            return sorted(p.name for p in self.context.datasets_dir.iterdir()
                          if p.is_file() and p.suffix.lower() in DATASET_SUFFIXES)
        except OSError:
            return []

    # -- internals ------------------------------------------------------------------------------
    async def _start(self, template_name: str | None, dataset: str | None, upload: str | None, models: list[str],
               concurrency: float, failures_only: bool, user: str | None = None) -> EvalJob:
        name = chosen(template_name)
        if name is None:
            raise InvalidRequestError("pick a template to evaluate")
        workers = inputs.whole_number(concurrency, "runs at once", low=1, high=MAX_CONCURRENCY) or 1
        template = self.context.registry.get(name)  # as the file is now
        path = self._dataset_path(dataset, upload)
        data = await load_dataset_async(path, template)  # off the event loop, stopped at its time limit
        service = self.context.service
        model_ids = resolve_models(service, template, models)
        shown, _ = self._dataset_names(dataset, upload)
        return EvalJob(service, template, data, model_ids, workers, shown, failures_only, user=user)

    def _dataset_path(self, dataset: str | None, upload: str | None) -> Path:
        if upload is not None and not isinstance(upload, str):  # not a file Gradio received
            raise InvalidRequestError(UPLOAD_REFUSED)
        if upload:
            return uploaded_file(upload)
        if dataset is not None and not isinstance(dataset, str):
            raise InvalidRequestError(f"dataset must be a file name from the list; got {inputs.shown(dataset)}")
        if not dataset:
            raise InvalidRequestError("pick a dataset, or upload a .csv or .jsonl file")
        if dataset not in self.datasets():  # a name from the listing, never a path
            shown = f"{self.context.datasets_dir.parent.name}/{self.context.datasets_dir.name}"
            raise InvalidRequestError(f"no dataset {dataset!r} in {shown}")
        return self.context.datasets_dir / dataset

    def _dataset_names(self, dataset: str | None, upload: str | None) -> tuple[str, str]:
        """(how the page names the dataset, its real path)."""
        if upload:
            return Path(upload).name, str(uploaded_file(upload))  # reached only once it was accepted
        directory = self.context.datasets_dir
        path = directory / (dataset or "")
        return f"{directory.parent.name}/{directory.name}/{dataset}", str(path)  # no absolute path shown

    def _report(self, job: EvalJob) -> EvalReport:
        """The report so far, with secrets masked in everything it shows or exports."""
        redact = self.context.redact
        results = [
            r.model_copy(update={"output": redact(r.output), "error": redact(r.error) if r.error else r.error,
                                 "problems": [redact(p) for p in r.problems]})
            for r in job.results
        ]
        return build_report(job.template, job.dataset, job.models, results)

    def _render(self, job: EvalJob, final: bool) -> EvalUpdate:
        report = self._report(job)
        state: EvalState = job.state if final else "running"
        if final and state == "running":  # stopped, but a run has not closed yet: the page is idle
            state = "stopped"
        progress = progress_line(len(job.results), job.total, job.passed, job.elapsed, state)
        if job.error:
            progress += f" · {job.error}"
        update = EvalUpdate(
            progress=self.context.redact(progress),
            summary=self.context.redact(summary_markdown(report, job.dataset_name)),
            table=_table(report, job.failures_only, running=not final),
            report=report,
        )
        if final:
            update.running = False
            if job.results:
                update.exports = self._export(job, report)
        return update

    def _export(self, job: EvalJob, report: EvalReport) -> tuple[Path, Path]:
        if job.exports is None:
            stem = self.context.export_dir() / export_stem(report, unique=job.id)  # two at once never collide
            job.exports = (report.write(stem.with_suffix(".csv")), report.write(stem.with_suffix(".jsonl")))
        return job.exports

    def _keep(self, eval_id: str, job: EvalJob) -> None:
        self._jobs[eval_id] = job
        while len(self._jobs) > _KEPT_JOBS:
            oldest = next((k for k, j in self._jobs.items() if j.task.done()), None)
            if oldest is None:
                break
            del self._jobs[oldest]


def _table(report: EvalReport, failures_only: bool, running: bool) -> dict:
    headers, rows = matrix(report, failures_only=failures_only, running=running)
    return {"headers": headers, "data": rows}


def build(context: AppContext, concurrency: int) -> gr.Dropdown:
    """Lay out the Evaluate tab in the current gr.Tab and wire it; returns its model picker."""
    handlers = EvalHandlers(context)
    gr.Markdown("Run a template over a dataset of cases × models; each cell passes or fails.")
    listed = [name for _, name in choices(context, with_none=False)]
    shipped = handlers.datasets()
    with_data = [name for name in listed if any(d.split(".")[0] == name for d in shipped)]
    first = next(iter(with_data or listed), None)
    mine = [d for d in shipped if first and d.split(".")[0] == first]
    with gr.Row(equal_height=False):
        template = template_dropdown(context, value=first, with_none=False, elem_id="eval-template")
        refresh = gr.Button("↻", size="sm", elem_id="eval-refresh", elem_classes=["refresh-button"])
        dataset = gr.Dropdown(shipped, value=mine[0] if mine else None, label="Dataset (prompts/datasets)",
                              interactive=True, allow_custom_value=True, elem_id="eval-dataset")
        upload = UploadBox(label="…or upload a .csv / .jsonl", file_types=list(DATASET_SUFFIXES), file_count="single",
                         type="filepath", height=120, elem_id="eval-upload")
    with gr.Row(equal_height=False):
        models = gr.Dropdown(context.model_ids, value=[], multiselect=True, allow_custom_value=True,
                             label="Models", info="None picked: the template's model.", elem_id="eval-models")
        workers = gr.Slider(1, MAX_CONCURRENCY, value=4, step=1, label="Runs at once", elem_id="eval-concurrency")
    with gr.Row():
        run = gr.Button("Evaluate", variant="primary", elem_id="eval-run")
        stop = gr.Button("Stop", variant="stop", visible=False, elem_id="eval-stop")
    progress = gr.Markdown("", elem_id="eval-progress", elem_classes=["run-status"])
    summary = gr.Markdown("", elem_id="eval-summary")
    failures_only = gr.Checkbox(label="Failures only", value=False, elem_id="eval-failures-only")
    table = gr.Dataframe(headers=["case"], value=None, interactive=False, wrap=True, elem_id="eval-table",
                         label="Cases × models")
    with gr.Row():
        csv_file = gr.DownloadButton("Download CSV", visible=False, elem_id="eval-csv")
        jsonl_file = gr.DownloadButton("Download JSONL", visible=False, elem_id="eval-jsonl")
    report = gr.State(None)
    eval_id = gr.State("")

    outputs = [progress, summary, table, csv_file, jsonl_file, report, eval_id, run, stop]
    running = run.click(handlers.run, inputs=[template, dataset, upload, models, workers, failures_only],
                        api_name="evaluate", **streaming_options(outputs, concurrency))
    stop.click(handlers.stop, inputs=[eval_id], outputs=outputs, api_name="evaluate_stop",
               cancels=[running], queue=False, show_progress="hidden")
    quick: dict[str, Any] = dict(queue=False, show_progress="hidden")
    failures_only.change(handlers.filter, inputs=[report, failures_only, eval_id], outputs=[table],
                         api_name="evaluate_filter", **quick)
    template.change(handlers.pick_template, inputs=[template, upload], outputs=[dataset],
                    api_visibility="private", **quick)
    upload.upload(lambda: None, outputs=[dataset], api_visibility="private", **quick)
    dataset.input(lambda: None, outputs=[upload], api_visibility="private", **quick)
    refresh.click(handlers.refresh, inputs=[template, dataset], outputs=[template, dataset],
                  api_visibility="private", **quick)
    return models
