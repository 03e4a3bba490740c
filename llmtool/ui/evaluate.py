"""The Evaluate tab: a template over a dataset × models (each case run 1–20 times), pass/fail per
cell, charts, the comparison with a baseline evaluation, each cell's run one click away, CSV/JSONL.

    evaluate.build(context, concurrency)     # inside a gr.Tab: lays out the tab and wires it
    evaluate.wire_run_permalink(past, tabs)  # after the tabs: `/?run=ID` opens the run in History

The dataset is one of `prompts/datasets/*` (picked by name from the listing, never a path typed
by the user) or an uploaded .csv/.jsonl. The matrix runs in a task of its own (`EvalJob`), so Stop,
Gradio cancelling the event, or the page going away all cancel it the same way: the runs in flight
are cancelled and their provider connections close. The handler shows progress at most once per
`update_interval` ("Running · 12/40 done · 2 failed") and redraws the charts at most twice a second;
once it ends, the evaluation (kept in the run store) is compared with the baseline picked ("last":
the newest earlier completed one). Stored evaluations can be picked, compared and linked later
(`eval_review.py`): `/?evaluation=ID` opens one. Export files go to a temp directory of ours.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import AsyncGenerator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import gradio as gr

from llmtool.errors import InvalidRequestError, PermissionDeniedError, UsageError
from llmtool.evaluation import DatasetError, EvalReport, build_report, load_dataset_async
from llmtool.evaluation.baseline import BaselineError
from llmtool.evaluation.dataset import DATASET_SUFFIXES
from llmtool.evaluation.runner import resolve_models
from llmtool.store import StoreError
from llmtool.ui import handlers as chat_handlers
from llmtool.ui import inputs
from llmtool.ui.eval_charts import ChartClock
from llmtool.ui.eval_compare import LAST, NONE, running_comparison
from llmtool.ui.eval_job import EvalJob
from llmtool.ui.eval_links import wire_run_permalink
from llmtool.ui.eval_review import ReviewHandlers
from llmtool.ui.eval_table import EvalState, dataset_problems_markdown, export_stem, progress_line
from llmtool.ui.eval_update import EvalUpdate, cleared_detail, shown
from llmtool.ui.eval_view import EvalView, layout, wire_review
from llmtool.ui.roles import Access
from llmtool.ui.streams import Pace, batches, streaming_options
from llmtool.ui.template_fields import chosen, error_markdown
from llmtool.ui.template_panel import choices
from llmtool.ui.uploads import UPLOAD_REFUSED, uploaded_file
from llmtool.web.context import AppContext

__all__ = ["MAX_CONCURRENCY", "MAX_REPEATS", "EvalHandlers", "EvalJob", "EvalUpdate", "build", "wire_run_permalink"]

log = logging.getLogger(__name__)

MAX_CONCURRENCY = 16
MAX_REPEATS = 20
_KEPT_JOBS = 32  # finished evaluations kept for Stop, the filters and the cell view to read


class EvalHandlers:
    def __init__(self, context: AppContext) -> None:
        self.context = context
        self._jobs: OrderedDict[str, EvalJob] = OrderedDict()
        self.review = ReviewHandlers(context, self._jobs)

    async def run(
        self, template: str | None, dataset: str | None = None, upload: str | None = None,
        models: list[str] | None = None, concurrency: float = 4, failures_only: bool = False,
        repeats: float | None = 1, baseline: str | None = LAST, changed_only: bool = False,
        request: gr.Request | None = None,
    ) -> AsyncGenerator[tuple[Any, ...], None]:
        """Evaluate the template over the dataset × models (`repeats` runs each); stream progress,
        the table and the charts; compare with `baseline` once it ends."""
        try:
            changed = inputs.flag(changed_only, "changed only")
            job = await self._start(template, dataset, upload, inputs.names(models, "models"), concurrency,
                                    inputs.flag(failures_only, "failures only"), repeats,
                                    user=chat_handlers.login(request))
        except DatasetError as error:
            shown_name, actual = self._dataset_names(dataset, upload)
            message = dataset_problems_markdown(error.problems, shown_name, actual)
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
        job.changed_only = changed
        job.baseline_choice = baseline if isinstance(baseline, str) and baseline else LAST
        self.context.stream_started(eval_id)
        clock = ChartClock()
        try:
            await self._attach_baseline(job, request)
            first = self._render(job, final=False, charts=clock.due(job.elapsed))
            first.eval_id, first.running, first.hide_exports, first.detail = eval_id, True, True, cleared_detail()
            first.comparison = ("_Compared with the baseline once it ends._" if job.baseline_choice != NONE
                                else "_No baseline picked._")
            first.diff = ""
            yield first.outputs()
            updates = batches(job.new_results(), Pace.of(self.context.settings))
            async with aclosing(updates):
                async for _ in updates:
                    yield self._render(job, final=False, charts=clock.due(job.elapsed)).outputs()
            yield (await self._finish(job, request)).outputs()
        finally:
            await job.cancel()  # no-op once it ended; otherwise cancels the runs in flight
            self.context.stream_ended(eval_id)

    async def run_api(
        self, template: str | None, dataset: str | None = None, upload: str | None = None,
        models: list[str] | None = None, concurrency: float = 4, failures_only: bool = False,
        request: gr.Request | None = None,
    ) -> AsyncGenerator[tuple[Any, ...], None]:
        """`/evaluate` for API callers: its six inputs as they have always been (one run per cell,
        compared with the last completed evaluation)."""
        steps = self.run(template, dataset, upload, models, concurrency, failures_only, request=request)
        async with aclosing(steps):
            async for outputs in steps:
                yield outputs

    async def stop(self, eval_id: str | None = None, request: gr.Request | None = None) -> tuple[Any, ...]:
        """Stop the evaluation: runs in flight are cancelled; the table keeps what finished."""
        job = self._jobs.get(eval_id or "")
        if job is None:
            return EvalUpdate(running=False).outputs()
        await job.cancel()
        await self.context.wait_stream_ended(eval_id or "", chat_handlers.STOP_GRACE)
        return (await self._finish(job, request)).outputs()

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
                     concurrency: float, failures_only: bool, repeats: float | None = 1,
                     user: str | None = None) -> EvalJob:
        name = chosen(template_name)
        if name is None:
            raise InvalidRequestError("pick a template to evaluate")
        Access.of(self.context, user).check_template(name)  # before its file (or the dataset) is read
        if upload and not self.context.service.may_upload(user):  # hidden for the role; refused here too
            raise PermissionDeniedError("your role may not upload datasets: pick one of prompts/datasets")
        workers = inputs.whole_number(concurrency, "runs at once", low=1, high=MAX_CONCURRENCY) or 1
        times = inputs.whole_number(repeats, "repeats", low=1, high=MAX_REPEATS) or 1
        template = self.context.registry.get(name)  # as the file is now
        path = self._dataset_path(dataset, upload)
        data = await load_dataset_async(path, template)  # off the event loop, stopped at its time limit
        service = self.context.service
        model_ids = resolve_models(service, template, models)
        shown_name, _ = self._dataset_names(dataset, upload)
        return EvalJob(service, template, data, model_ids, workers, shown_name, failures_only, user=user,
                       repeats=times)

    async def _attach_baseline(self, job: EvalJob, request: gr.Request | None) -> None:
        """The baseline's cells, to draw the running evaluation against (never fails the run)."""
        if job.baseline_choice == NONE or self.context.service.store is None:
            return
        stored = self.review.stored
        try:
            job.baseline = await stored.baseline(job.template.name, job.dataset.path.name, job.baseline_choice,
                                                 stored.scope(chat_handlers.login(request)), exclude=job.id)
        except (BaselineError, StoreError):
            job.baseline = None  # said once it ends, by the comparison
        except Exception:
            log.exception("evaluate: reading the baseline failed")

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
            shown_dir = f"{self.context.datasets_dir.parent.name}/{self.context.datasets_dir.name}"
            raise InvalidRequestError(f"no dataset {dataset!r} in {shown_dir}")
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
        report = build_report(job.template, job.dataset, job.models, results, repeats=job.repeats)
        kept = self.context.service.store is not None
        return report.model_copy(update={"evaluation_id": job.id if kept else None})

    def _render(self, job: EvalJob, final: bool, charts: bool = True) -> EvalUpdate:
        report = self._report(job)
        state: EvalState = job.state if final else "running"
        if final and state == "running":  # stopped, but a run has not closed yet: the page is idle
            state = "stopped"
        comparison = running_comparison(report, *job.baseline) if job.baseline is not None else None
        update = shown(report, comparison, dataset_name=job.dataset_name, failures_only=job.failures_only,
                       changed_only=job.changed_only, running=not final, charts=charts or final,
                       redact=self.context.redact)
        update.progress = self.context.redact(self._progress(job, state))
        if final:
            update.running = False
            if job.results:
                update.exports = self._export(job, report)
        return update

    def _progress(self, job: EvalJob, state: EvalState) -> str:
        line = progress_line(len(job.results), job.total, job.passed, job.elapsed, state)
        if job.repeats > 1:
            line += f" · {job.repeats} runs per cell"
        return line + (f" · {job.error}" if job.error else "")

    async def _finish(self, job: EvalJob, request: gr.Request | None) -> EvalUpdate:
        """The last update: everything final, compared with the baseline as stored, the pickers."""
        update = self._render(job, final=True)
        scope = self.review.stored.scope(chat_handlers.login(request))
        report = update.report
        if self.context.service.store is not None and report is not None:
            comparison, why = await self.review.comparison_of(job.id, job.baseline_choice, scope)
            final = shown(report, comparison, dataset_name=job.dataset_name, failures_only=job.failures_only,
                          changed_only=job.changed_only, redact=self.context.redact, why_no_comparison=why)
            update.table, update.charts, update.compared = final.table, final.charts, final.compared
            update.comparison, update.diff, update.forget_comparison = final.comparison, final.diff, comparison is None
            pickers = await self.review.pickers(job.template.name, job.dataset.path.name, job.id, job.baseline_choice,
                                                 scope, keep_baseline=True)
            update.evaluation, update.baseline = pickers.evaluation, pickers.baseline
        elif job.baseline is None:
            update.comparison, update.diff = "_Comparing needs the run store; this server keeps none._", ""
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


def build(context: AppContext, concurrency: int) -> gr.Dropdown:
    """Lay out the Evaluate tab in the current gr.Tab and wire it; returns its model picker."""
    handlers = EvalHandlers(context)
    view = layout(context, handlers.datasets(), MAX_CONCURRENCY, MAX_REPEATS)
    _wire(view, handlers, concurrency)
    wire_review(view, handlers.review)
    return view.models


def _wire(view: EvalView, handlers: EvalHandlers, concurrency: int) -> None:
    outputs = view.outputs
    streaming = streaming_options(outputs, concurrency)
    running = view.run.click(
        handlers.run, inputs=[view.template, view.dataset, view.upload, view.models, view.workers, view.failures_only,
                              view.repeats, view.baseline, view.changed_only],
        api_name="page_evaluate", api_visibility="private", **streaming)
    # API callers keep `/evaluate`'s inputs as they were (raw-protocol clients send exactly those).
    api = gr.on([], handlers.run_api, inputs=[view.template, view.dataset, view.upload, view.models, view.workers,
                                              view.failures_only], api_name="evaluate", **streaming)
    view.stop.click(handlers.stop, inputs=[view.eval_id], outputs=outputs, api_name="evaluate_stop",
                    cancels=[running, api], queue=False, show_progress="hidden")
    quick: dict[str, Any] = dict(queue=False, show_progress="hidden")
    view.template.change(handlers.pick_template, inputs=[view.template, view.upload], outputs=[view.dataset],
                         api_visibility="private", **quick)
    view.upload.upload(lambda: None, outputs=[view.dataset], api_visibility="private", **quick)
    view.dataset.input(lambda: None, outputs=[view.upload], api_visibility="private", **quick)
    view.refresh.click(handlers.refresh, inputs=[view.template, view.dataset], outputs=[view.template, view.dataset],
                       api_visibility="private", **quick)
