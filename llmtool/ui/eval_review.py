"""The Evaluate tab's reading side: stored evaluations picked or linked, a baseline picked, a cell opened.

    review = ReviewHandlers(context, jobs)          # jobs: the tab's running and recent EvalJobs, by id
    await review.listing(template, dataset, upload, eval_id, baseline)   # the two pickers, refreshed
    await review.open_evaluation(evaluation_id, baseline, failures_only, changed_only)   # a stored one
    await review.pick_baseline(eval_id, baseline, report, failures_only, changed_only)   # compare again
    await review.select_cell(evt, report, eval_id)  # the cell's run: request, answer, checks
    await review.on_load(template, dataset, upload, baseline, request)   # `?evaluation=ID`, else the pickers
    await review.comparison_of(evaluation_id, baseline, scope)          # (comparison, why there is none)

Handlers are thin over `StoredEvaluations`; every answer is a sentence, never a traceback. With logins
a user reads only their own evaluations and runs (an admin every one): another's id is "not found",
exactly as a missing one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from llmtool.evaluation.baseline import BaselineError, Comparison
from llmtool.evaluation.results import CaseResult, EvalReport
from llmtool.store import RunRecord, StoreError
from llmtool.ui.eval_compare import (
    LAST,
    NO_COMPARISON_WANTED,
    NONE,
    baseline_choices,
    default_baseline,
    evaluation_choices,
)
from llmtool.ui.eval_detail import cell_detail, shown_result
from llmtool.ui.eval_links import is_id, linked
from llmtool.ui.eval_stored import EvaluationNotFound, StoredEvaluations
from llmtool.ui.eval_update import EvalUpdate, cleared_detail, shown, table_value
from llmtool.ui.handlers import login
from llmtool.ui.restore import model_price_hint
from llmtool.ui.template_fields import chosen, error_markdown
from llmtool.ui.uploads import uploaded_file
from llmtool.web.context import AppContext

if TYPE_CHECKING:
    from llmtool.ui.eval_job import EvalJob

log = logging.getLogger(__name__)
UNEXPECTED = "llmtool failed unexpectedly; the server log has the details."


class ReviewHandlers:
    def __init__(self, context: AppContext, jobs: Mapping[str, EvalJob]) -> None:
        self.context = context
        self.stored = StoredEvaluations(context)
        self.jobs = jobs

    # -- the pickers ----------------------------------------------------------------------------
    async def listing(self, template: str | None, dataset: str | None, upload: str | None = None,
                      eval_id: str | None = None, baseline: str | None = None,
                      request: gr.Request | None = None) -> tuple[Any, Any]:
        """The Evaluation and Baseline pickers for the template and dataset now picked."""
        update = await self.pickers(template, _dataset_name(dataset, upload), eval_id, baseline,
                                     self.stored.scope(login(request)))
        return update.evaluation, update.baseline

    async def pickers(self, template: str | None, dataset: str | None, current: str | None, baseline: str | None,
                      scope: str | None, keep_baseline: bool = False) -> EvalUpdate:
        """The pickers' updates: the evaluations of `template` on `dataset` (`current` shown picked),
        the baselines to compare `current` with. `keep_baseline`: `baseline` stays picked, offered even
        when it is not listed (an id or a name typed, or sent by an API caller: the comparison then
        says whether it exists); otherwise only an evaluation picked by hand stays."""
        name = chosen(template)
        records = []
        if name and dataset:
            try:
                records = await self.stored.listing(name, dataset, scope)
            except StoreError as error:
                log.warning("evaluate: cannot list evaluations: %s", error.message)
            except Exception:
                log.exception("evaluate: listing evaluations failed")
        pinned = self._pinned(name)
        offered = baseline_choices(records, current, pinned, self.context.redact)
        values = [value for _, value in offered]
        if keep_baseline and baseline not in values and baseline != current and is_id(baseline):
            assert baseline is not None
            offered.append((self.context.redact(baseline), baseline))
            values.append(baseline)
        if keep_baseline and baseline in values:
            picked = baseline
        elif baseline in values and baseline not in (LAST, NONE, pinned):
            picked = baseline  # an evaluation picked by hand stays picked
        else:
            picked = default_baseline(records, current, pinned)
        listed = evaluation_choices(records, self.context.redact)
        shown_id = current if current in {value for _, value in listed} else None
        return EvalUpdate(evaluation=gr.update(choices=listed, value=shown_id),
                          baseline=gr.update(choices=offered, value=picked))

    def _pinned(self, template: str | None) -> str | None:
        if not template:
            return None
        try:
            return self.context.registry.get(template).meta.baseline
        except Exception:  # a template that does not load: no pinned baseline to offer
            return None

    # -- one stored evaluation ------------------------------------------------------------------
    async def open_evaluation(self, evaluation_id: str | None, baseline: str | None = LAST,
                              failures_only: bool = False, changed_only: bool = False,
                              request: gr.Request | None = None) -> tuple[Any, ...]:
        """Show a stored evaluation: summary, table, charts, its permalink, and what changed against
        the baseline picked."""
        return (await self._open(evaluation_id, baseline, failures_only, changed_only, request)).outputs()

    async def _open(self, evaluation_id: str | None, baseline: str | None, failures_only: bool,
                    changed_only: bool, request: gr.Request | None) -> EvalUpdate:
        evaluation_id = (evaluation_id or "").strip()
        if not evaluation_id:
            return EvalUpdate()
        scope = self.stored.scope(login(request))
        try:
            if not is_id(evaluation_id):
                raise EvaluationNotFound(evaluation_id)
            record, report = await self.stored.open(evaluation_id, scope)
        except EvaluationNotFound as missing:
            return EvalUpdate(progress=error_markdown(missing.message), running=False)
        except StoreError as error:
            return EvalUpdate(progress=error_markdown(self.context.redact(error.message)))
        except Exception:
            log.exception("evaluate: opening evaluation %s failed", evaluation_id)
            return EvalUpdate(progress=error_markdown(UNEXPECTED))
        pickers = await self.pickers(record.template, record.dataset, record.id, baseline, scope, keep_baseline=True)
        comparison, why = await self.comparison_of(record.id, pickers.baseline["value"], scope)
        update = shown(self._redacted(report), comparison, dataset_name=record.dataset, failures_only=failures_only,
                       changed_only=changed_only, redact=self.context.redact, why_no_comparison=why)
        update.progress = self.context.redact(_stored_line(record.status, report, record.created_at))
        update.eval_id, update.hide_exports, update.detail = record.id, True, cleared_detail()
        update.evaluation, update.baseline = pickers.evaluation, pickers.baseline
        return update

    async def comparison_of(self, evaluation_id: str, baseline: str | None,
                            scope: str | None) -> tuple[Comparison | None, str]:
        """The stored evaluation against `baseline`, or None and the sentence that says why not."""
        if not baseline or baseline == NONE:
            return None, NO_COMPARISON_WANTED
        try:
            return await self.stored.compare(evaluation_id, baseline, scope), ""
        except BaselineError as error:
            return None, error_markdown(self.context.redact(error.message))
        except StoreError as error:
            return None, error_markdown(self.context.redact(error.message))
        except Exception:
            log.exception("evaluate: comparing %s with %s failed", evaluation_id, baseline)
            return None, error_markdown(UNEXPECTED)

    async def pick_baseline(self, eval_id: str | None, baseline: str | None, report: EvalReport | None,
                            failures_only: bool = False, changed_only: bool = False,
                            request: gr.Request | None = None) -> tuple[Any, ...]:
        """Compare the evaluation shown with the baseline just picked."""
        job = self.jobs.get(eval_id or "")
        if not eval_id or report is None or (job is not None and job.state == "running"):
            return EvalUpdate().outputs()  # a running one is compared once it ends
        scope = self.stored.scope(login(request))
        comparison, why = await self.comparison_of(eval_id, baseline, scope)
        update = shown(report, comparison, dataset_name=_dataset_of(report), failures_only=failures_only,
                       changed_only=changed_only, redact=self.context.redact, why_no_comparison=why)
        update.summary = update.link = None  # as they are
        return update.outputs()

    async def filter(self, report: EvalReport | None, compared: Comparison | None, failures_only: bool,
               changed_only: bool, eval_id: str | None = None) -> Any:
        """The Failures only and Changed only boxes: the table shown, filtered (or not)."""
        job = self.jobs.get(eval_id or "")
        running = job is not None and job.state == "running"
        if job is not None:  # a running evaluation keeps the choice for its next updates
            job.failures_only, job.changed_only = bool(failures_only), bool(changed_only)
        if report is None:
            return gr.skip()
        return table_value(report, compared, bool(failures_only), bool(changed_only), running)

    # -- one cell -----------------------------------------------------------------------------------
    async def select_cell(self, evt: gr.SelectData, report: EvalReport | None, eval_id: str | None = None,
                          request: gr.Request | None = None) -> tuple[Any, ...]:
        """A cell of the table was selected: its run's request, answer, reasoning and checks."""
        index = evt.index if isinstance(evt.index, list | tuple) else [evt.index, 0]
        row = evt.row_value or []
        column = int(index[1]) if len(index) > 1 and isinstance(index[1], int) else 0
        if report is None or not row or column < 1 or column > len(report.models):
            return EvalUpdate().outputs()
        case_id, model = str(row[0]), report.models[column - 1]
        job = self.jobs.get(eval_id or "")
        results = [r for r in (self._job_results(job) if job is not None else report.results)
                   if r.case_id == case_id and r.model == model]
        scope = self.stored.scope(login(request))
        if job is not None and scope is not None and job.user != scope:
            results = []
        return EvalUpdate(detail=await self._detail(case_id, model, results, scope)).outputs()

    def _job_results(self, job: EvalJob) -> list[CaseResult]:
        return sorted(job.results, key=lambda r: r.repeat)

    async def _detail(self, case_id: str, model: str, results: list[CaseResult], scope: str | None) -> Any:
        redact = self.context.redact
        failed = shown_result(results)
        record: RunRecord | None = None
        if failed is not None and failed.run_id:
            record = await self._run(failed.run_id, scope)
        hint = model_price_hint(self.context.service, model) if record is not None else None
        redacted = [self._redacted_result(r) for r in results]
        return cell_detail(case_id, model, redacted, record, redact=redact, price_hint=hint)

    async def _run(self, run_id: str, scope: str | None) -> RunRecord | None:
        store = self.context.service.store
        if store is None:
            return None
        try:
            record = await store.get_run(run_id)
            if record is None or not record.ended:
                record = await self._written(run_id) or record
        except StoreError as error:
            log.warning("evaluate: cannot read run %s: %s", run_id, error.message)
            return None
        if record is None or (scope is not None and record.user != scope):
            return None
        return record

    async def _written(self, run_id: str) -> RunRecord | None:
        """A run that just ended here is written to the store about once a second: write it now."""
        service = self.context.service
        in_memory = getattr(service, "get", None)
        recorder = getattr(service, "recorder", None)
        if in_memory is None or recorder is None or in_memory(run_id) is None or service.store is None:
            return None
        await recorder.flush()
        return await service.store.get_run(run_id)

    # -- the page load ----------------------------------------------------------------------------
    async def on_load(self, template: str | None, dataset: str | None, upload: str | None = None,
                      baseline: str | None = LAST, request: gr.Request | None = None) -> tuple[Any, ...]:
        """`?evaluation=ID` opens that evaluation (and the tab); otherwise the pickers are filled."""
        target = linked(request)
        if target is not None and target[0] == "evaluation":
            update = await self._open(target[1], baseline, False, False, request)
            return (gr.Tabs(selected="evaluate-tab"), *update.outputs())
        if request is not None and "evaluation" in getattr(request, "query_params", {}):
            shown_id = str(request.query_params.get("evaluation", ""))[:64]
            missing = EvalUpdate(progress=error_markdown(f"evaluation {shown_id} not found"))
            return (gr.Tabs(selected="evaluate-tab"), *missing.outputs())
        pickers = await self.pickers(template, _dataset_name(dataset, upload), None, baseline,
                                      self.stored.scope(login(request)))
        return (gr.skip(), *pickers.outputs())

    # -- helpers -------------------------------------------------------------------------------------
    def _redacted(self, report: EvalReport) -> EvalReport:
        return report.model_copy(update={"results": [self._redacted_result(r) for r in report.results]})

    def _redacted_result(self, result: CaseResult) -> CaseResult:
        redact = self.context.redact
        return result.model_copy(update={"output": redact(result.output),
                                         "error": redact(result.error) if result.error else result.error,
                                         "problems": [redact(p) for p in result.problems]})


def _dataset_name(dataset: str | None, upload: str | None) -> str | None:
    """The dataset as the store names it: the file's name."""
    if upload and isinstance(upload, str):
        try:
            return uploaded_file(upload).name
        except Exception:  # not a file this server received: nothing to list
            return None
    return dataset if isinstance(dataset, str) and dataset else None


def _dataset_of(report: EvalReport) -> str:
    return Path(report.dataset).name


def _stored_line(status: str, report: EvalReport, created_at: float) -> str:
    when = datetime.fromtimestamp(created_at).strftime("%Y-%m-%d %H:%M")
    runs = len(report.results)
    passed = sum(r.passed for r in report.results)
    words = {"completed": "Done", "stopped": "Stopped", "running": "Still running", "failed": "Failed"}
    word = words.get(status, status)
    return f"Stored evaluation · {word} · {passed}/{runs} passed · {when}"
