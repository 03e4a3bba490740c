"""The Evaluate tab's components: laid out here (`layout`), the reading side wired here (`wire_review`);
`evaluate.py` wires running an evaluation.

    view = layout(context, shipped_datasets, max_concurrency=16, max_repeats=20)
    view.outputs      # in the order of eval_update.OUTPUTS

From the top: what to run (template, dataset, models, runs at once, repeats), Evaluate/Stop, the
progress line and permalink, the summary, the charts, the comparison with a baseline (pickers, what
changed, the template versions' diff), the table with its filters, the downloads, and the cell
selected in the table (its run's request, answer and checks).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import gradio as gr

from llmtool.evaluation.dataset import DATASET_SUFFIXES
from llmtool.ui.eval_compare import LAST, NONE
from llmtool.ui.eval_detail import PICK_A_CELL
from llmtool.ui.eval_links import EVALUATE_TAB
from llmtool.ui.eval_update import OUTPUTS
from llmtool.ui.template_panel import choices, template_dropdown
from llmtool.ui.uploads import UploadBox
from llmtool.web.context import AppContext

if TYPE_CHECKING:
    from llmtool.ui.eval_review import ReviewHandlers


@dataclass
class EvalView:
    template: gr.Dropdown
    refresh: gr.Button
    dataset: gr.Dropdown
    upload: UploadBox
    models: gr.Dropdown
    workers: gr.Slider
    repeats: gr.Number
    run: gr.Button
    stop: gr.Button
    progress: gr.Markdown
    link: gr.Markdown
    summary: gr.Markdown
    charts: gr.Markdown
    evaluation: gr.Dropdown
    baseline: gr.Dropdown
    list_refresh: gr.Button
    comparison: gr.Markdown
    diff: gr.Markdown
    failures_only: gr.Checkbox
    changed_only: gr.Checkbox
    table: gr.Dataframe
    csv: gr.DownloadButton
    jsonl: gr.DownloadButton
    detail_title: gr.Markdown
    detail_request: gr.Markdown
    detail_answer: gr.Markdown
    detail_checks: gr.Markdown
    report: gr.State
    eval_id: gr.State
    compared: gr.State

    @property
    def outputs(self) -> list[Any]:
        return [getattr(self, name) for name in OUTPUTS]


def layout(context: AppContext, shipped: list[str], max_concurrency: int, max_repeats: int) -> EvalView:
    """Lay out the tab in the current gr.Tab."""
    gr.Markdown("Run a template over a dataset of cases × models; each cell passes or fails. Compare with an "
                "earlier evaluation to see what a change fixed and what it broke.")
    listed = [name for _, name in choices(context, with_none=False)]
    with_data = [name for name in listed if any(d.split(".")[0] == name for d in shipped)]
    first = next(iter(with_data or listed), None)
    mine = [d for d in shipped if first and d.split(".")[0] == first]
    made: dict[str, Any] = {}
    with gr.Row(equal_height=False):
        made["template"] = template_dropdown(context, value=first, with_none=False, elem_id="eval-template")
        made["refresh"] = gr.Button("↻", size="sm", elem_id="eval-refresh", elem_classes=["refresh-button"])
        made["dataset"] = gr.Dropdown(shipped, value=mine[0] if mine else None, label="Dataset (prompts/datasets)",
                                      interactive=True, allow_custom_value=True, elem_id="eval-dataset")
        made["upload"] = UploadBox(label="…or upload a .csv / .jsonl", file_types=list(DATASET_SUFFIXES),
                                   file_count="single", type="filepath", height=120, elem_id="eval-upload")
    with gr.Row(equal_height=False):
        made["models"] = gr.Dropdown(context.model_ids, value=[], multiselect=True, allow_custom_value=True,
                                     label="Models", info="None picked: the template's model.", elem_id="eval-models")
        made["workers"] = gr.Slider(1, max_concurrency, value=4, step=1, label="Runs at once",
                                    elem_id="eval-concurrency")
        made["repeats"] = gr.Number(1, minimum=1, maximum=max_repeats, precision=0, step=1, label="Repeats",
                                    info=f"Runs per case and model (1–{max_repeats}): flaky cells show up.",
                                    elem_id="eval-repeats")
    with gr.Row():
        made["run"] = gr.Button("Evaluate", variant="primary", elem_id="eval-run")
        made["stop"] = gr.Button("Stop", variant="stop", visible=False, elem_id="eval-stop")
    made["progress"] = gr.Markdown("", elem_id="eval-progress", elem_classes=["run-status"])
    made["link"] = gr.Markdown("", elem_id="eval-link", elem_classes=["run-status"])
    made["summary"] = gr.Markdown("", elem_id="eval-summary")
    made["charts"] = gr.Markdown("", elem_id="eval-charts", latex_delimiters=[])
    with gr.Accordion("Compare with a baseline", open=True, elem_id="eval-compare"):
        with gr.Row(equal_height=False):
            made["evaluation"] = gr.Dropdown([], value=None, label="Evaluation", elem_id="eval-evaluation",
                                             allow_custom_value=True,  # an id typed (or sent to /evaluation_open)
                                             info="Stored evaluations of this template on this dataset, newest "
                                                  "first; or type an evaluation's id.")
            made["baseline"] = gr.Dropdown([("last completed before it", LAST), ("none", NONE)], value=LAST,
                                           label="Baseline", elem_id="eval-baseline", allow_custom_value=True,
                                           info="What it is compared with: picked, or an id or a name typed.")
            made["list_refresh"] = gr.Button("↻", size="sm", elem_id="eval-list-refresh",
                                             elem_classes=["refresh-button"])
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                made["comparison"] = gr.Markdown("", elem_id="eval-comparison", latex_delimiters=[])
            with gr.Column(scale=2):
                made["diff"] = gr.Markdown("", elem_id="eval-diff", latex_delimiters=[])
    with gr.Row():
        made["failures_only"] = gr.Checkbox(label="Failures only", value=False, elem_id="eval-failures-only")
        made["changed_only"] = gr.Checkbox(label="Changed only (against the baseline)", value=False,
                                           elem_id="eval-changed-only")
    made["table"] = gr.Dataframe(headers=["case"], value=None, interactive=False, wrap=True, elem_id="eval-table",
                                 label="Cases × models (select a cell to see its run)")
    with gr.Row():
        made["csv"] = gr.DownloadButton("Download CSV", visible=False, elem_id="eval-csv")
        made["jsonl"] = gr.DownloadButton("Download JSONL", visible=False, elem_id="eval-jsonl")
    made["detail_title"] = gr.Markdown(PICK_A_CELL, elem_id="eval-cell-title")
    with gr.Row(equal_height=False):
        with gr.Column(scale=2), gr.Accordion("Request", open=True):
            made["detail_request"] = gr.Markdown("", elem_id="eval-cell-request", sanitize_html=True)
        with gr.Column(scale=3):
            made["detail_answer"] = gr.Markdown("", elem_id="eval-cell-answer", sanitize_html=True, container=True,
                                                label="Answer", show_label=True)
            made["detail_checks"] = gr.Markdown("", elem_id="eval-cell-checks", sanitize_html=True)
    made["report"], made["eval_id"], made["compared"] = gr.State(None), gr.State(""), gr.State(None)
    return EvalView(**{f.name: made[f.name] for f in fields(EvalView)})


def wire_review(view: EvalView, review: ReviewHandlers) -> None:
    """The pickers, the filters, a selected cell, and `?evaluation=ID` when the page loads."""
    quick: dict[str, Any] = dict(queue=False, show_progress="hidden")
    pickers = [view.evaluation, view.baseline]
    listing = [view.template, view.dataset, view.upload, view.eval_id, view.baseline]
    gr.on([view.template.change, view.dataset.change, view.upload.change, view.list_refresh.click], review.listing,
          inputs=listing, outputs=pickers, api_visibility="private", **quick)
    view.evaluation.input(review.open_evaluation,
                          inputs=[view.evaluation, view.baseline, view.failures_only, view.changed_only],
                          outputs=view.outputs, api_name="evaluation_open", show_progress="hidden")
    view.baseline.input(review.pick_baseline,
                        inputs=[view.eval_id, view.baseline, view.report, view.failures_only, view.changed_only],
                        outputs=view.outputs, api_visibility="private", show_progress="hidden")
    gr.on([view.failures_only.change, view.changed_only.change], review.filter,
          inputs=[view.report, view.compared, view.failures_only, view.changed_only, view.eval_id],
          outputs=[view.table], api_name="evaluate_filter", **quick)
    view.table.select(review.select_cell, inputs=[view.report, view.eval_id], outputs=view.outputs,
                      api_visibility="private", show_progress="hidden")
    root = gr.context.Context.root_block
    if root is None:
        return
    tabs = _enclosing_tabs()
    load_inputs = [view.template, view.dataset, view.upload, view.baseline]
    if tabs is not None:
        root.load(review.on_load, inputs=load_inputs, outputs=[tabs, *view.outputs], api_visibility="private",
                  show_progress="hidden")
        return

    async def load_here(template: str | None, dataset: str | None, upload: str | None, baseline: str | None,
                        request: gr.Request) -> tuple[Any, ...]:
        return (await review.on_load(template, dataset, upload, baseline, request))[1:]  # no tabs to select

    root.load(load_here, inputs=load_inputs, outputs=view.outputs, api_visibility="private", show_progress="hidden")


def _enclosing_tabs() -> gr.Tabs | None:
    """The gr.Tabs around the tab being built, when that tab is the Evaluate tab (a link opens it)."""
    tab = gr.context.Context.block
    parent = getattr(tab, "parent", None)
    if isinstance(tab, gr.Tab) and getattr(tab, "id", None) == EVALUATE_TAB and isinstance(parent, gr.Tabs):
        return parent
    return None
