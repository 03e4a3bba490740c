"""The History tab: every kept run, filtered, paged, opened, re-run, deleted, exported.

    view = history.build(context, concurrency)   # inside a gr.Tab: lays out the tab and wires it
    view.open_in_chat.click(..., inputs=[view.selected_conversation])   # the lead's wiring

The list reads the run store newest first, a page at a time with the store's cursor (Newer goes
back through the cursors seen). Selecting a row (or typing a run id) opens the run: request, answer,
status, metrics, validation, events, the template's stored content. Re-run starts the same request
as a new run (source "history") and streams it into the run pane; Stop cancels it by id. Deleting
asks for a second click. Export writes every run the applied filters select, not just the page.

With logins every query, open, re-run, delete and export is limited to the user's own runs; a run
of someone else answers "not found". All text shown goes through `context.redact`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from llmtool.ui.history_handlers import ANY, PAGE_SIZE, STATUSES, HistoryHandlers
from llmtool.ui.history_render import EVENT_HEADERS, HEADERS
from llmtool.ui.streams import streaming_options
from llmtool.web.context import AppContext

__all__ = ["HistoryHandlers", "HistoryView", "build"]


# -- the layout -----------------------------------------------------------------------------------
@dataclass
class HistoryView:
    """The History tab's components (for the lead's wiring: Open in Chat → the Chat tab)."""

    handlers: HistoryHandlers
    message: gr.Markdown
    status_filter: gr.Dropdown
    model_filter: gr.Dropdown
    template_filter: gr.Dropdown
    user_filter: gr.Textbox
    date_from: gr.Textbox
    date_to: gr.Textbox
    search: gr.Textbox
    search_button: gr.Button
    reset: gr.Button
    newer: gr.Button
    older: gr.Button
    page: gr.Markdown
    table: gr.Dataframe
    list_state: gr.State
    export_jsonl: gr.Button
    export_csv: gr.Button
    export_file: gr.File
    run_id: gr.Textbox
    selected_run: gr.State
    selected_conversation: gr.State  # the conversation id of the opened run, "" when none
    title: gr.Markdown
    actions: gr.Row
    open_in_chat: gr.Button
    rerun: gr.Button
    stop: gr.Button
    delete_run: gr.Button
    delete_conversation: gr.Button
    pending: gr.State
    confirm_row: gr.Row
    confirm_delete: gr.Button
    cancel_delete: gr.Button
    rerun_id: gr.State
    status: gr.Markdown
    answer: gr.Markdown
    validation: gr.Markdown
    metrics: gr.Markdown
    request: gr.Markdown
    template_box: gr.Accordion
    template: gr.Markdown
    events: gr.Dataframe

    @property
    def outputs(self) -> list[Any]:
        """In the order of `Update.outputs()`."""
        return [
            self.table, self.page, self.message, self.list_state, self.newer, self.older,
            self.run_id, self.selected_run, self.selected_conversation, self.title, self.status, self.answer,
            self.validation, self.metrics, self.request, self.template_box, self.template, self.events,
            self.actions, self.open_in_chat, self.delete_conversation, self.pending, self.confirm_row,
            self.confirm_delete,
            self.rerun, self.stop, self.rerun_id, self.export_file,
        ]

    @property
    def filters(self) -> list[gr.components.Component]:
        return [self.status_filter, self.model_filter, self.template_filter, self.user_filter,
                self.date_from, self.date_to, self.search]

    def refresh_on(self, *triggers: Any) -> None:
        """Show the current page again on these triggers (e.g. the tab's `select`)."""
        gr.on(list(triggers), self.handlers.refresh, inputs=[self.list_state], outputs=self.outputs,
              api_visibility="private", show_progress="hidden")


def build(context: AppContext, concurrency: int, *, page_size: int = PAGE_SIZE) -> HistoryView:
    """Lay out the History tab in the current gr.Tab and wire it."""
    handlers = HistoryHandlers(context, page_size)
    gr.Markdown("Every run kept by this server, newest first. Select a row to open the run.")
    message = gr.Markdown("", elem_id="history-message")
    templates = [ANY, *context.registry.names()]
    with gr.Row(equal_height=False):
        status_filter = gr.Dropdown([ANY, *STATUSES], value=ANY, label="Status", elem_id="history-status")
        model_filter = gr.Dropdown([ANY, *context.model_ids], value=ANY, label="Model", allow_custom_value=True,
                                   elem_id="history-model")
        template_filter = gr.Dropdown(templates, value=ANY, label="Template", allow_custom_value=True,
                                      elem_id="history-template")
        user_filter = gr.Textbox(label="User", max_lines=1, elem_id="history-user",
                                 info="With logins you see only your own runs.")
    with gr.Row(equal_height=False):
        date_from = gr.Textbox(label="Date from", placeholder="YYYY-MM-DD", max_lines=1, elem_id="history-from")
        date_to = gr.Textbox(label="Date to", placeholder="YYYY-MM-DD", max_lines=1, elem_id="history-to",
                             info="Included; the server's local time.")
        search = gr.Textbox(label="Search prompts and answers", max_lines=1, scale=2, elem_id="history-search",
                            info="whole words, all required")
    with gr.Row(equal_height=True):
        search_button = gr.Button("Search", variant="primary", elem_id="history-search-button")
        reset = gr.Button("Reset", elem_id="history-reset")
        newer = gr.Button("← Newer", interactive=False, elem_id="history-newer")
        older = gr.Button("Older →", interactive=False, elem_id="history-older")
    page = gr.Markdown("", elem_id="history-page")
    table = gr.Dataframe(headers=HEADERS, value=None, datatype="str", interactive=False, wrap=True,
                         max_height=460, elem_id="history-table", label="Runs", show_label=False,
                         column_widths=["10%", "8%", "8%", "9%", "5%", "16%", "16%", "5%", "5%", "7%", "5%", "6%"])
    list_state = gr.State({"filters": {}, "cursors": [None], "next": None})
    with gr.Row():
        export_jsonl = gr.Button("Export JSONL", size="sm", elem_id="history-export-jsonl")
        export_csv = gr.Button("Export CSV", size="sm", elem_id="history-export-csv")
    export_file = gr.File(label="Export", visible=False, interactive=False, elem_id="history-export-file")

    gr.Markdown("### Run")
    run_id = gr.Textbox(label="Run id", max_lines=1, elem_id="history-run-id",
                        info="Select a row above, or type a run id and press Enter.")
    selected_run = gr.State("")
    selected_conversation = gr.State("")
    rerun_id = gr.State("")
    pending = gr.State("")
    title = gr.Markdown("", elem_id="history-title")
    with gr.Row(visible=False) as actions:
        open_in_chat = gr.Button("Open in Chat", visible=False, elem_id="history-open-in-chat", size="sm")
        rerun = gr.Button("Re-run", variant="primary", elem_id="history-rerun", size="sm")
        stop = gr.Button("Stop", variant="stop", visible=False, elem_id="history-stop", size="sm")
        delete_run = gr.Button("Delete run", variant="stop", elem_id="history-delete-run", size="sm")
        delete_conversation = gr.Button("Delete conversation", variant="stop", visible=False,
                                        elem_id="history-delete-conversation", size="sm")
    with gr.Row(visible=False) as confirm_row:
        confirm_delete = gr.Button("Confirm", variant="stop", elem_id="history-confirm-delete", size="sm")
        cancel_delete = gr.Button("Cancel", elem_id="history-cancel-delete", size="sm")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            status = gr.Markdown("", elem_id="history-run-status", elem_classes=["run-status"])
            answer = gr.Markdown("", elem_id="history-answer", sanitize_html=True, container=True,
                                 label="Answer", show_label=True)
            validation = gr.Markdown("", elem_id="history-validation", elem_classes=["validation"])
            metrics = gr.Markdown("", elem_id="history-metrics", elem_classes=["run-status"])
        with gr.Column(scale=2):
            with gr.Accordion("Request", open=True):
                request_md = gr.Markdown("", elem_id="history-request", sanitize_html=True)
            with gr.Accordion("Template file (as stored)", open=False, visible=False) as template_box:
                template = gr.Markdown("", elem_id="history-template-content", sanitize_html=True)
            with gr.Accordion("Events", open=False):
                events = gr.Dataframe(headers=EVENT_HEADERS, value=None, datatype="str", interactive=False,
                                      wrap=True, max_height=320, elem_id="history-events", show_label=False)

    view = HistoryView(
        handlers=handlers, message=message, status_filter=status_filter, model_filter=model_filter,
        template_filter=template_filter, user_filter=user_filter, date_from=date_from, date_to=date_to,
        search=search, search_button=search_button, reset=reset, newer=newer, older=older, page=page,
        table=table, list_state=list_state, export_jsonl=export_jsonl, export_csv=export_csv,
        export_file=export_file, run_id=run_id, selected_run=selected_run,
        selected_conversation=selected_conversation, title=title, actions=actions, open_in_chat=open_in_chat,
        rerun=rerun, stop=stop, delete_run=delete_run, delete_conversation=delete_conversation, pending=pending,
        confirm_row=confirm_row, confirm_delete=confirm_delete, cancel_delete=cancel_delete, rerun_id=rerun_id,
        status=status, answer=answer, validation=validation, metrics=metrics, request=request_md,
        template_box=template_box, template=template, events=events,
    )
    _wire(view, concurrency)
    return view


def _wire(view: HistoryView, concurrency: int) -> None:
    handlers, outputs = view.handlers, view.outputs
    quick: dict[str, Any] = dict(outputs=outputs, show_progress="hidden")
    gr.on([view.search_button.click, *(box.submit for box in (view.user_filter, view.date_from, view.date_to,
                                                               view.search)),
           *(box.input for box in (view.status_filter, view.model_filter, view.template_filter))],
          handlers.search, inputs=view.filters, api_name="history", **quick)
    view.reset.click(handlers.reset, outputs=view.filters, api_visibility="private", queue=False,
                     show_progress="hidden").then(
        handlers.search, inputs=view.filters, api_visibility="private", **quick)
    view.older.click(handlers.older, inputs=[view.list_state], api_name="history_older", **quick)
    view.newer.click(handlers.newer, inputs=[view.list_state], api_name="history_newer", **quick)
    gr.on([], handlers.refresh, inputs=[view.list_state], api_name="history_refresh", **quick)
    root = gr.context.Context.root_block
    if root is not None:  # the first page when the page loads
        root.load(handlers.refresh, inputs=[view.list_state], api_visibility="private", **quick)

    view.table.select(handlers.select, api_visibility="private", **quick)
    view.run_id.submit(handlers.open, inputs=[view.run_id], api_name="history_open", **quick)

    view.delete_run.click(handlers.ask_delete_run, inputs=[view.selected_run], api_visibility="private",
                          queue=False, **quick)
    view.delete_conversation.click(handlers.ask_delete_conversation, inputs=[view.selected_run],
                                   api_visibility="private", queue=False, **quick)
    view.cancel_delete.click(handlers.cancel_delete, api_visibility="private", queue=False, **quick)
    view.confirm_delete.click(handlers.delete, inputs=[view.pending, view.selected_run, view.list_state],
                              api_visibility="private", **quick)
    # For API callers, who name what to delete ("run" or "conversation") and the run.
    what, run_id = gr.Textbox(visible=False), gr.Textbox(visible=False)
    gr.on([], handlers.delete, inputs=[what, run_id, view.list_state], api_name="history_delete", **quick)

    streaming = streaming_options(outputs, concurrency)
    view.rerun.click(handlers.rerun, inputs=[view.selected_run, view.list_state], api_visibility="private",
                     **streaming)
    gr.on([], handlers.rerun, inputs=[run_id, view.list_state], api_name="history_rerun", **streaming)
    # Stop cancels the run by its id: the streaming handler then shows how it ended, as stored.
    view.stop.click(handlers.stop, inputs=[view.rerun_id], outputs=outputs, api_name="history_stop",
                    queue=False, show_progress="hidden")

    view.export_jsonl.click(handlers.export_jsonl, inputs=[view.list_state], api_visibility="private", **quick)
    view.export_csv.click(handlers.export_csv, inputs=[view.list_state], api_visibility="private", **quick)
    kind = gr.Textbox(visible=False)  # API callers: /history_export with "jsonl" or "csv"
    gr.on([], handlers.export, inputs=[kind, view.list_state], api_name="history_export", **quick)
