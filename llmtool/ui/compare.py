"""The Compare tab: one set of variables, 2–4 columns (each a template × model) streaming at once.

    view = compare.build(context, concurrency)   # inside a gr.Tab: lays out the tab and wires it
    view.templates, view.models                  # the columns' pickers (fitted on page load)

Run starts every column's run together (`Template.to_run_request`, so each records its template
and file hash), reads their events merged and coalesced (one page update per `update_interval` for
the whole tab) and shows each column's answer, status line and validation. Stop, or anything else
cancels every run: each provider connection closes. A reload does not: the runs go on, their ids
are kept in the browser (`gr.BrowserState`, key "llmtool-compare"), and the page load follows the
running columns again and shows the finished ones' stored answers (`restore`).

The variable fields are the union of the variables of the columns' templates, each with the spec
of the first template declaring it; a template ignores the values of variables it does not declare.
Each column has its own reasoning effort (the same model at two efforts is a fair comparison); a
reasoning model's thoughts are shown collapsed above its answer, with how long it thought. The
pickers offer the templates the login's role may use (↻ too; `role_page.py` fits them on page load);
the service refuses any other.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from llmtool.errors import InvalidRequestError, UsageError
from llmtool.events import Completed
from llmtool.service import Run, RunOrigin
from llmtool.store import RunRecord
from llmtool.ui import inputs
from llmtool.ui.browser_state import browser_state
from llmtool.ui.fairness import run_options
from llmtool.ui.handlers import (
    EFFORT_CHOICES,
    MODEL_DEFAULT,
    STOP_GRACE,
    reasoning_effort,
    status_with_template,
    wait_ended,
)
from llmtool.ui.restore import model_price_hint, status_of_record, turn_from_record, validation_of_record
from llmtool.ui.roles import Access, login
from llmtool.ui.status import RunProgress, escape_markdown, with_price_hint
from llmtool.ui.streams import Pace, batches, merge
from llmtool.ui.template_fields import FieldSpec, chosen, code_block, error_markdown, template_values
from llmtool.ui.template_panel import Field, choices, render_fields, template_dropdown, values_of
from llmtool.ui.transcript import Turn, answer_markdown, redacted, thought_details, turn_from_progress
from llmtool.web.context import AppContext

log = logging.getLogger(__name__)

MAX_COLUMNS = 4
STORAGE_KEY = "llmtool-compare"
TEMPLATE_MODEL = "(the template's model)"


@dataclass
class ColumnView:
    """One column's outputs; None leaves that output as it is."""

    status: str | None = None
    validation: str | None = None
    answer: str | None = None

    def outputs(self) -> list[Any]:
        return [gr.skip() if v is None else v for v in (self.status, self.validation, self.answer)]


@dataclass
class CompareUpdate:
    columns: list[ColumnView] = field(default_factory=lambda: [ColumnView() for _ in range(MAX_COLUMNS)])
    run_ids: list[str] | None = None
    running: bool | None = None

    def outputs(self) -> tuple[Any, ...]:
        controls: tuple[Any, Any] = (gr.skip(), gr.skip())
        if self.running is not None:
            controls = (gr.update(visible=not self.running), gr.update(visible=self.running))
        cells = [value for column in self.columns for value in column.outputs()]
        run_ids = gr.skip() if self.run_ids is None else self.run_ids
        saved = gr.skip() if self.run_ids is None else {"run_ids": self.run_ids}
        return (*cells, run_ids, *controls, saved)


@dataclass
class Column:
    run: Run
    progress: RunProgress
    shown_final: bool = False


class CompareHandlers:
    def __init__(self, context: AppContext) -> None:
        self.context = context

    async def run(
        self, columns: float | None = 2,
        template_1: str | None = None, model_1: str | None = None,
        template_2: str | None = None, model_2: str | None = None,
        template_3: str | None = None, model_3: str | None = None,
        template_4: str | None = None, model_4: str | None = None,
        variables: dict[str, Any] | None = None,
        effort_1: str | None = None, effort_2: str | None = None,
        effort_3: str | None = None, effort_4: str | None = None,
        request: gr.Request | None = None,
    ) -> AsyncIterator[tuple[Any, ...]]:
        """Run the first `columns` columns, each its template × model (× reasoning effort: empty or
        "model default" for the template's or the model's own), with the same `variables` (a JSON
        object; each template takes the ones it declares, empty values mean its default)."""
        picks = [template_1, model_1, template_2, model_2, template_3, model_3, template_4, model_4]
        efforts = [effort_1, effort_2, effort_3, effort_4]
        try:
            count = _count(columns)
            variables = inputs.json_object(variables, "variables")
        except UsageError as error:
            message = self.context.redact(error.message)
            log.info("refused a compare run: %s", message)
            update = CompareUpdate(columns=[_error(message), *(ColumnView("", "", "") for _ in range(3))],
                                   running=False)
            yield update.outputs()
            return
        run_ids = [""] * MAX_COLUMNS
        update = CompareUpdate(run_ids=run_ids)
        started: dict[int, Column] = {}
        origin = RunOrigin(user=login(request), source="compare")
        for index in range(count):
            try:
                run = self._start(picks[2 * index], picks[2 * index + 1], variables, origin, efforts[index])
            except UsageError as error:
                message = self.context.redact(error.message)
                log.info("refused compare column %d: %s", index + 1, message)
                update.columns[index] = _error(message)
                continue
            except Exception:  # a bug of ours: say so, keep the traceback in the server log
                log.exception("could not start compare column %d", index + 1)
                update.columns[index] = _error("llmtool failed unexpectedly; the server log has the details.")
                continue
            started[index] = Column(run, RunProgress(model=run.model.id, buffered=_buffered(run)))
            run_ids[index] = run.id
        for index in range(count, MAX_COLUMNS):
            update.columns[index] = ColumnView("", "", "")
        if not started:
            update.running = False
            yield update.outputs()
            return
        async for outputs in self._follow(started, update, count):
            yield outputs

    async def restore(self, saved: Any = None, request: gr.Request | None = None) -> AsyncIterator[tuple[Any, ...]]:
        """Page load: the columns of the last Run all this browser kept, running ones followed again
        (from their first event), finished ones with their stored answers. Only the login that
        started a run sees it. Outputs: those of `run`, then the Columns radio."""
        ids = saved.get("run_ids") if isinstance(saved, dict) else None
        if not isinstance(ids, list) or not any(isinstance(i, str) and i for i in ids):
            yield (*CompareUpdate().outputs(), gr.skip())
            return
        ids = [i if isinstance(i, str) else "" for i in ids[:MAX_COLUMNS]]
        ids += [""] * (MAX_COLUMNS - len(ids))
        user, service = login(request), self.context.service
        update = CompareUpdate(run_ids=[""] * MAX_COLUMNS)
        started: dict[int, Column] = {}
        for index, run_id in enumerate(ids):
            try:
                record = await service.record(run_id) if run_id else None
            except Exception:  # a store that fails must not break the page load: empty columns
                log.exception("could not read run %s to restore Compare", run_id)
                record = None
            if record is None or record.user != user:
                update.columns[index] = ColumnView("", "", "")
                continue
            assert update.run_ids is not None
            update.run_ids[index] = run_id
            run = service.get(run_id)
            if run is not None:
                started[index] = Column(run, RunProgress(model=run.model.id, buffered=_buffered(run)))
            else:
                update.columns[index] = self._stored_view(record)
        count = max([i + 1 for i, r in enumerate(update.run_ids or []) if r] or [2])
        if not started:
            update.running = False
            yield (*update.outputs(), max(2, count))
            return
        first = True
        async for outputs in self._follow(started, update, count):
            yield (*outputs, max(2, count) if first else gr.skip())
            first = False

    async def _follow(
        self, started: dict[int, Column], update: CompareUpdate, count: int
    ) -> AsyncIterator[tuple[Any, ...]]:
        """Stream the started columns (each from its first event) into `update`'s page."""
        key = _key(update.run_ids or [])
        loop = asyncio.get_running_loop()
        begun = loop.time() - max(0.0, time.time() - min(c.run.created_at for c in started.values()))
        self.context.stream_started(key)
        try:
            update.running = True
            for index, column in started.items():
                update.columns[index] = self._view(column, 0.0)
            yield update.outputs()
            indexes = list(started)
            events = batches(merge([started[i].run.events() for i in indexes]), Pace.of(self.context.settings))
            async with aclosing(events):
                async for batch in events:
                    for position, event in batch:
                        started[indexes[position]].progress.apply(event)
                    elapsed = loop.time() - begun
                    done = all(c.progress.done for c in started.values())
                    final = self._update(started, elapsed, final=done)
                    if done:  # the last update is whole: an API caller's result shows every column
                        for index, view in enumerate(update.columns[:count]):
                            if index not in started:
                                final.columns[index] = view
                    yield final.outputs()
        finally:
            # The runs go on without a reader (a reload follows them again); Stop all cancels them.
            self.context.stream_ended(key)

    async def stop(self, run_ids: list[str] | None = None) -> tuple[Any, ...]:
        """Stop every column's run: each provider connection closes, the partial answers stay."""
        run_ids = list(run_ids or [])
        runs = {i: run for i, r in enumerate(run_ids) if r and (run := self.context.service.get(r)) is not None}
        for run in runs.values():
            run.cancel()
        await wait_ended(*runs.values())
        await self.context.wait_stream_ended(_key(run_ids), STOP_GRACE)
        columns = {
            i: Column(run, RunProgress.replay(run.model.id, run.log, buffered=_buffered(run)))
            for i, run in runs.items()
        }
        return self._update(columns, 0.0, final=True).outputs()

    def runner(self, specs: list[FieldSpec]) -> Callable[..., AsyncIterator[tuple[Any, ...]]]:
        """For Run all: (columns, template_1, model_1, …, model_4, effort_1, …, effort_4, *fields)
        → the updates of `run`."""
        count = len(specs)

        async def run(request: gr.Request, *args: Any) -> AsyncIterator[tuple[Any, ...]]:
            head, fields = args[: len(args) - count], args[len(args) - count:]
            picks, efforts = head[: 1 + 2 * MAX_COLUMNS], head[1 + 2 * MAX_COLUMNS:]
            variables = values_of(specs, fields)
            named = dict(zip(("effort_1", "effort_2", "effort_3", "effort_4"), efforts, strict=True))
            # picks is exactly (columns, template_1, model_1, …, model_4); mypy cannot count a *args
            async for outputs in self.run(*picks, variables=variables, request=request,  # type: ignore[misc]
                                          **named):
                yield outputs

        return run

    def show_columns(self, columns: float | None) -> tuple[Any, ...]:
        try:
            count = _count(columns)
        except UsageError:
            return tuple(gr.skip() for _ in range(MAX_COLUMNS))
        return tuple(gr.update(visible=i < count) for i in range(MAX_COLUMNS))

    def refresh(self, request: gr.Request, revision: int | None, *names: str | None) -> tuple[Any, ...]:
        """↻: list the templates (the login's role's) again, rebuild the fields from the files."""
        listed = choices(self.context, with_none=False, access=Access.of(self.context, login(request)))
        known = {value for _, value in listed}
        names = tuple(n if n in known or not listed else listed[0][1] for n in names)
        return (*(gr.update(choices=listed, value=n) for n in names), (revision or 0) + 1)

    # -- rendering ------------------------------------------------------------------------------
    def _start(self, name: str | None, model: str | None, variables: dict[str, Any] | None,
               origin: RunOrigin | None = None, effort: str | None = None) -> Run:
        picked = chosen(name)
        if picked is None:
            raise InvalidRequestError("pick a template for this column")
        Access.of(self.context, origin.user if origin is not None else None).check_template(picked)
        template = self.context.registry.get(picked)  # as the file is now
        model = inputs.text(model, "model")
        model = None if not model or model == TEMPLATE_MODEL else model
        request = template.to_run_request(template_values(template, variables, strict=False), model=model,
                                          reasoning_effort=reasoning_effort(effort))
        return self.context.service.start(request, origin)

    def _update(self, columns: dict[int, Column], elapsed: float, final: bool) -> CompareUpdate:
        update = CompareUpdate()
        for index, column in columns.items():
            if column.shown_final and not final:
                continue  # ended earlier: its last view is on the page already
            update.columns[index] = self._view(column, elapsed)
            column.shown_final = column.progress.done
        if final:
            update.running = False
        return update

    def _stored_view(self, record: RunRecord) -> ColumnView:
        """A column whose run this process does not hold: its stored answer (or text so far)."""
        redact = self.context.redact
        hint = model_price_hint(self.context.service, record.model)
        return ColumnView(status=escape_markdown(redact(status_of_record(record, hint))),
                          validation=escape_markdown(redact(validation_of_record(record))),
                          answer=pane_markdown(turn_from_record(record, redact)))

    def _view(self, column: Column, elapsed: float) -> ColumnView:
        redact, progress = self.context.redact, column.progress
        turn = redacted(turn_from_progress("", progress, elapsed), redact)
        status = status_with_template(column.run, progress.status_line(elapsed))
        if isinstance(progress.terminal, Completed):
            status = with_price_hint(status, progress.terminal.metrics,
                                     self.context.service.catalog.price_hint(column.run.model))
        return ColumnView(
            status=escape_markdown(redact(status)),
            validation=escape_markdown(redact(progress.validation_line())),
            answer=pane_markdown(turn),
        )


def pane_markdown(turn: Turn) -> str:
    """A column's answer: the thoughts collapsed above it, a withheld answer below its mark."""
    answer = thought_details(turn.thought) + answer_markdown(turn)
    if turn.withheld:
        answer += "\n\n**The withheld answer:**\n\n" + code_block(turn.withheld)
    return answer


@dataclass
class CompareView:
    templates: list[gr.Dropdown]  # each column's template picker
    models: list[gr.Dropdown]  # each column's model picker


def build(
    context: AppContext, concurrency: int | None, demo: gr.Blocks | None = None,
    saved: gr.BrowserState | None = None,
) -> CompareView:
    """Lay out the Compare tab in the current gr.Tab and wire it; with `demo`, its page load
    restores the columns this browser last ran (kept in `saved`: make it outside the tabs, or a
    reload on another tab does not see it). `concurrency`: Gradio's limit of its run events (None:
    none, `fairness.py`)."""
    handlers = CompareHandlers(context)
    gr.Markdown("Run the same variables through 2–4 templates × models side by side.")
    listed = choices(context, with_none=False)
    first = listed[0][1] if listed else None
    with gr.Row(equal_height=False):
        count = gr.Radio([2, 3, 4], value=2, label="Columns", elem_id="compare-count", scale=3)
        refresh = gr.Button("↻", size="sm", elem_id="compare-refresh", elem_classes=["refresh-button"])
    revision = gr.State(0)
    variables = gr.JSON({}, visible=False)  # API callers' variables (the page's Run reads the fields)
    with gr.Accordion("Variables", open=True) as fields_area:
        pass
    with gr.Row():
        run = gr.Button("Run all", variant="primary", elem_id="compare-run")
        stop = gr.Button("Stop all", variant="stop", visible=False, elem_id="compare-stop")
    run_ids = gr.State([""] * MAX_COLUMNS)
    if saved is None:
        saved = browser_state(context, STORAGE_KEY)
    pickers: list[gr.Dropdown] = []
    efforts: list[gr.Dropdown] = []
    blocks: list[gr.Column] = []
    cells: list[gr.components.Component] = []
    with gr.Row(equal_height=False):
        for i in range(MAX_COLUMNS):
            with gr.Column(visible=i < 2, min_width=240, elem_id=f"compare-col-{i + 1}") as block:
                template = template_dropdown(context, label=f"Template {i + 1}", value=first, with_none=False,
                                             elem_id=f"compare-template-{i + 1}")
                # The first column starts on the template's model, the others on the default model.
                model = gr.Dropdown(
                    [TEMPLATE_MODEL, *context.model_ids], value=TEMPLATE_MODEL if i == 0 else context.default_model,
                    label=f"Model {i + 1}", allow_custom_value=True, interactive=True,
                    elem_id=f"compare-model-{i + 1}",
                )
                effort = gr.Dropdown(EFFORT_CHOICES, value=MODEL_DEFAULT, label=f"Reasoning effort {i + 1}",
                                     interactive=True, elem_id=f"compare-effort-{i + 1}")
                status = gr.Markdown("", elem_id=f"compare-status-{i + 1}", elem_classes=["run-status"])
                validation = gr.Markdown("", elem_id=f"compare-validation-{i + 1}", elem_classes=["validation"])
                answer = gr.Markdown("", elem_id=f"compare-answer-{i + 1}", elem_classes=["compare-answer"],
                                     sanitize_html=True, container=True)
            pickers += [template, model]
            efforts.append(effort)
            blocks.append(block)
            cells += [status, validation, answer]
    templates = pickers[0::2]
    outputs = [*cells, run_ids, run, stop, saved]
    streaming = run_options(outputs, concurrency)

    def wire(specs: list[FieldSpec], fields: list[Field]) -> None:
        run.click(handlers.runner(specs), inputs=[count, *pickers, *efforts, *fields], api_visibility="private",
                  **streaming)

    with fields_area:
        render_fields(context, templates, revision, prefix="cmp-var", wire=wire, count=count)
    api = gr.on([], handlers.run, inputs=[count, *pickers, variables, *efforts], api_name="compare", **streaming)
    # Stop cancels every run itself (the page's Run is wired inside the render, out of reach of `cancels`).
    restore = demo.load(handlers.restore, inputs=[saved], api_name="compare_restore", api_visibility="undocumented",
                        **run_options([*outputs, count], concurrency)) if demo is not None else None
    stop.click(handlers.stop, inputs=[run_ids], outputs=outputs, api_name="compare_stop",
               cancels=[api] if restore is None else [api, restore], queue=False, show_progress="hidden")
    quick: dict[str, Any] = dict(queue=False, show_progress="hidden", api_visibility="private")
    count.change(handlers.show_columns, inputs=[count], outputs=blocks, **quick)
    refresh.click(handlers.refresh, inputs=[revision, *templates], outputs=[*templates, revision], **quick)
    return CompareView(templates=templates, models=pickers[1::2])


def _count(columns: float | None) -> int:
    """How many columns run: 2 to 4 (nothing: 2); an InvalidRequestError for anything else."""
    return inputs.whole_number(columns, "columns", low=2, high=MAX_COLUMNS) or 2


def _error(message: str) -> ColumnView:
    return ColumnView(status=error_markdown(message), validation="", answer="")


def _buffered(run: Run) -> bool:
    return run.request.validation.mode == "buffer"


def _key(run_ids: list[str]) -> str:
    return "compare:" + ",".join(run_ids)
