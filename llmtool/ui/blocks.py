"""The app: five tabs. Chat (`build_components` lays it out, `wire_events` connects it to the
handlers), Compare (`compare.py`), Evaluate (`evaluate.py`), History (`history.py`), whose
Open in Chat loads a kept conversation into the Chat tab (`wire_open_conversation`), and Usage
(`usage.py`, admins only).

    demo = build_demo(AppContext(settings))   # a gr.Blocks with its queue configured from settings

The chat's conversation id is kept in the browser (`gr.BrowserState`, key "llmtool-chat"): on page
load `ChatHandlers.restore` brings the conversation back from the run store, following an answer
that still streams. `wire_open_conversation` lets another tab open a kept conversation in the chat.

Every model picker (Chat, Compare, Evaluate, the History filter) is refreshed on page load with
the providers' live lists (`model_pickers.py`); any `PROVIDER:MODEL` can still be typed. The page is
built once for everyone; with logins, page load then fits it to the login's role (`role_page.py`):
the templates it may use, no prompt box for a role that runs templates only, the Usage tab for admins,
and a line under Chat's status with what the login spent of its budgets (again after every run).

Gradio's defaults are wrong for an I/O-bound tool (one run at a time per event, a 40-job cap), so
`build_demo` sets the queue's concurrency, size and thread cap from `settings.ui`; with logins the
events that start runs have no Gradio limit at all, so the service's fair scheduler decides who goes
next (`fairness.py`). Model output is rendered as sanitized Markdown with custom tags stripped; the
copy buttons are the Chatbot's own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import gradio as gr

from llmtool.ui import compare, evaluate, history, usage
from llmtool.ui.api_guard import GuardedBlocks
from llmtool.ui.browser_state import browser_state
from llmtool.ui.fairness import run_limit, run_options, thread_cap, unlimit_runs
from llmtool.ui.handlers import EFFORT_CHOICES, MODEL_DEFAULT, ChatHandlers
from llmtool.ui.history_handlers import ANY
from llmtool.ui.model_pickers import ModelPickers
from llmtool.ui.role_page import RolePage
from llmtool.ui.template_fields import FieldSpec
from llmtool.ui.template_panel import Field, problems_of, render_fields, template_dropdown
from llmtool.web.context import AppContext
from llmtool.web.security import META_POLICY

log = logging.getLogger(__name__)
TITLE = "llmtool"
CHAT_TAB = "chat-tab"
USAGE_TAB = "usage-tab"
CHAT_STORAGE_KEY = "llmtool-chat"
QUEUE_ESTIMATES_EVERY = 1.0  # s between Gradio's messages to events waiting in its queue (their place in line)
CSS = """
#run-status, .run-status { min-height: 1.6em; font-size: var(--text-sm); color: var(--body-text-color-subdued); }
#run-status p, #validation p, .run-status p, .validation p { margin: 0; }
.refresh-button { max-width: 3em; min-width: 3em !important; align-self: end; }
.template-info { font-size: var(--text-sm); }
.compare-answer { min-height: 8em; }
details.thought { margin-bottom: var(--spacing-lg); font-size: var(--text-sm); color: var(--body-text-color-subdued); }
details.thought > summary { cursor: pointer; }
"""


@dataclass
class ChatComponents:
    chatbot: gr.Chatbot
    status: gr.Markdown
    prompt: gr.Textbox
    idle_controls: gr.Row
    send: gr.Button
    regenerate: gr.Button
    clear: gr.Button
    stop: gr.Button
    model: gr.Dropdown
    system: gr.Textbox
    temperature: gr.Textbox
    max_output_tokens: gr.Number
    reasoning_effort: gr.Dropdown
    mode: gr.Radio
    must_be_json: gr.Checkbox
    max_length: gr.Number
    forbidden_words: gr.Textbox
    validation: gr.Markdown
    turns: gr.State
    run_id: gr.State
    run_template: gr.Button
    template: gr.Dropdown
    refresh_templates: gr.Button
    template_info: gr.Markdown
    template_area: gr.Group
    fields_column: gr.Column
    preview: gr.Markdown
    template_values: gr.JSON
    template_revision: gr.State
    saved: gr.BrowserState  # {"conversation_id": …}: what a reload (or a restarted server) restores
    spend: gr.Markdown  # what the login spent of its budgets (hidden without one)
    templates_only: gr.Markdown  # instead of the prompt box, for a role that runs templates only
    # The chat's streaming events (wired by `wire_events`): what opening another conversation cancels.
    streams: list[Any] = field(default_factory=list)

    @property
    def options(self) -> list[gr.components.Component]:
        # The reasoning effort is not one of them: the API endpoints keep the inputs raw-protocol
        # clients send (bench/bench_ui.py); the page's events add it after the turns.
        return [self.model, self.system, self.temperature, self.max_output_tokens, self.mode,
                self.must_be_json, self.max_length, self.forbidden_words]

    @property
    def outputs(self) -> list[gr.components.Component | gr.Row]:
        # The order of handlers.Update.outputs().
        return [self.chatbot, self.turns, self.run_id, self.status, self.validation, self.prompt,
                self.idle_controls, self.stop, self.saved]


def build_components(context: AppContext, saved: gr.BrowserState | None = None) -> ChatComponents:
    """Lay out the chat tab inside the current gr.Blocks; `saved` is what the browser keeps of it
    (made here if not given: see `build_demo` for why it is better made outside the tabs)."""
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(
                label="Chat",
                height=460,
                buttons=["copy", "copy_all"],
                feedback_options=None,
                sanitize_html=True,
                render_markdown=True,
                allow_tags=False,
                allow_file_downloads=False,
                placeholder="Pick a model, type a prompt, press Enter.",
                elem_id="chat",
            )
            status = gr.Markdown("", label="Status", elem_id="run-status")
            spend = gr.Markdown("", visible=False, elem_id="spend", elem_classes=["run-status"])
            with gr.Group(visible=False) as template_area, gr.Row(equal_height=False):
                with gr.Column(scale=1, min_width=280, elem_id="template-fields") as fields_column:
                    template_values = gr.JSON({}, visible=False)  # API callers' variables
                    template_revision = gr.State(0)
                with gr.Column(scale=1, min_width=280):
                    preview = gr.Markdown("", label="Preview", elem_id="template-preview",
                                          sanitize_html=True)
            templates_only = gr.Markdown("", visible=False, elem_id="templates-only")
            prompt = gr.Textbox(
                placeholder="Ask something… (Enter sends, Shift+Enter for a new line)",
                lines=1,  # one line: Enter sends (a multi-line textbox takes Enter as a newline)
                max_lines=12,
                show_label=False,
                elem_id="prompt",
            )
            with gr.Row():
                with gr.Row(visible=True) as idle_controls:
                    send = gr.Button("Send", variant="primary", elem_id="send")
                    run_template = gr.Button("Run template", variant="primary", visible=False,
                                             elem_id="run-template")
                    regenerate = gr.Button("Regenerate", elem_id="regenerate")
                    clear = gr.Button("Clear", elem_id="clear")
                stop = gr.Button("Stop", variant="stop", visible=False, elem_id="stop")
        with gr.Column(scale=1, min_width=260):
            # Custom values are allowed (an endpoint may serve models it does not list); the
            # service refuses an unusable one with a clear message.
            model = gr.Dropdown(
                choices=context.model_ids, value=context.default_model, label="Model",
                allow_custom_value=True, elem_id="model",
            )
            with gr.Row(equal_height=False):
                template = template_dropdown(context, elem_id="template")
                refresh_templates = gr.Button("↻", size="sm", elem_id="refresh-templates",
                                              elem_classes=["refresh-button"])
            template_info = gr.Markdown(
                context.redact(problems_of(context)), elem_id="template-info", elem_classes=["template-info"]
            )
            system = gr.Textbox(label="System prompt", lines=3, max_lines=10,
                                info="A template's own system prompt replaces it.")
            # Number inputs cannot be empty in the browser, and 0 is a real temperature: a
            # textbox lets "empty" mean the model's default.
            temperature = gr.Textbox(
                label="Temperature", placeholder="model default (0–2)", max_lines=1,
                elem_id="temperature",
            )
            max_output_tokens = gr.Number(
                label="Max output tokens", value=0, minimum=0, precision=0,
                info="0: the model's default.",
            )
            reasoning_effort = gr.Dropdown(
                EFFORT_CHOICES, value=MODEL_DEFAULT, label="Reasoning effort", elem_id="reasoning-effort",
                info="How hard a reasoning model thinks (a template's own effort applies under model "
                     "default); a model refuses the values it does not take.",
            )
            validation = gr.Markdown("", label="Validation", elem_id="validation")
            with gr.Accordion("Validation rules (a template brings its own)", open=False):
                mode = gr.Radio(
                    ["stream", "buffer"], value="stream", label="Output mode",
                    info="buffer: show the answer only once it passed the rules.",
                )
                must_be_json = gr.Checkbox(label="Answer must be JSON", value=False)
                max_length = gr.Number(
                    label="Max length (characters)", value=0, minimum=0, precision=0, info="0: no limit."
                )
                forbidden_words = gr.Textbox(label="Forbidden words (comma-separated)")
    turns = gr.State([])
    run_id = gr.State("")
    if saved is None:
        saved = browser_state(context, CHAT_STORAGE_KEY)
    return ChatComponents(
        chatbot=chatbot, status=status, prompt=prompt, idle_controls=idle_controls, send=send,
        regenerate=regenerate, clear=clear, stop=stop, model=model, system=system,
        temperature=temperature, max_output_tokens=max_output_tokens, reasoning_effort=reasoning_effort, mode=mode,
        must_be_json=must_be_json, max_length=max_length, forbidden_words=forbidden_words,
        validation=validation, turns=turns, run_id=run_id, run_template=run_template, template=template,
        refresh_templates=refresh_templates, template_info=template_info, template_area=template_area,
        fields_column=fields_column, preview=preview, template_values=template_values,
        template_revision=template_revision, saved=saved, spend=spend, templates_only=templates_only,
    )


def wire_events(c: ChatComponents, handlers: ChatHandlers, concurrency: int | None,
                demo: gr.Blocks | None = None) -> None:
    """Connect the components to the handlers; name the API endpoints. With `demo`, its page load
    restores the conversation the browser kept. `concurrency`: Gradio's limit of the run events
    (None: none, `fairness.py`)."""
    streaming = run_options(c.outputs, concurrency)
    # The page's Send and Regenerate pass the reasoning effort too; the API endpoints of the same
    # handlers keep their inputs (raw-protocol clients send exactly those), the effort unset.
    # (Named, or Gradio would name them after the handlers and rename the endpoints below.)
    send = gr.on([c.send.click, c.prompt.submit], handlers.send,
                 inputs=[c.prompt, *c.options, c.turns, c.reasoning_effort], api_name="page_send",
                 api_visibility="private", **streaming)
    regenerate = c.regenerate.click(handlers.regenerate, inputs=[*c.options, c.turns, c.reasoning_effort],
                                    api_name="page_regenerate", api_visibility="private", **streaming)
    chat = gr.on([], handlers.send, inputs=[c.prompt, *c.options, c.turns], api_name="chat", **streaming)
    regenerate_api = gr.on([], handlers.regenerate, inputs=[*c.options, c.turns], api_name="regenerate",
                           **streaming)
    # A template as the next turn, for API callers (the page's Run template is wired with its fields).
    run_template = gr.on([], handlers.run_template,
                         inputs=[c.template, c.template_values, *c.options, c.turns],
                         api_name="run_template", **streaming)
    c.streams = [send, regenerate, chat, regenerate_api, run_template]
    if demo is not None:
        c.streams.append(demo.load(handlers.restore, inputs=[c.saved], api_name="restore",
                                   api_visibility="undocumented", **streaming))
    # Stop and Clear bypass the queue: they must work while every slot streams. `cancels` stops
    # the streaming handler; the handlers themselves cancel the run, closing the provider stream.
    stop = c.stop.click(
        handlers.stop, inputs=[c.run_id, c.turns], outputs=c.outputs, api_name="stop",
        cancels=c.streams, queue=False, show_progress="hidden",
    )
    for ended in (send, regenerate, stop):  # (a stopped stream's own `.then` does not run: Stop's does)
        wire_spend(c, handlers, ended)
    gr.on(
        [c.clear.click, c.chatbot.clear],  # the Clear button and the Chatbot's own trash icon
        handlers.clear, inputs=[c.run_id], outputs=c.outputs, api_name="clear",
        cancels=c.streams, queue=False, show_progress="hidden",
    )
    wire_template_events(c, handlers, concurrency)


def wire_spend(c: ChatComponents, handlers: ChatHandlers, event: Any) -> None:
    """After `event` (a run's stream ended): the line of what the login spent, again."""
    event.then(handlers.spend, outputs=[c.spend], queue=False, show_progress="hidden", api_visibility="private")


def wire_template_events(c: ChatComponents, handlers: ChatHandlers, concurrency: int | None) -> None:
    """The picker: a pick shows the template's fields, info and preview; ↻ re-reads the files;
    Run template runs it with the fields' values, read straight from them (`/run_template` with a
    `variables` object for API callers)."""
    quick: dict[str, Any] = dict(queue=False, show_progress="hidden")

    def wire(specs: list[FieldSpec], fields: list[Field]) -> None:
        if fields:
            gr.on([f.change for f in fields], handlers.fields_changed(specs), inputs=[c.template, *fields],
                  outputs=[c.preview], api_visibility="private", **quick)
        # Out of reach of the `cancels` of Stop and Clear (wired once, outside the render; a
        # listener on them wired in here replaces theirs in the browser): they cancel its run
        # by id instead, and wait for this handler to end before they answer.
        ran = c.run_template.click(handlers.template_runner(specs),
                                   inputs=[c.template, *c.options, c.turns, c.reasoning_effort, *fields],
                                   api_visibility="private", **run_options(c.outputs, concurrency))
        wire_spend(c, handlers, ran)

    with c.fields_column:  # here, once the dropdown exists: the fields follow its pick
        render_fields(handlers.context, [c.template], c.template_revision, prefix="var", wire=wire)
    c.template.change(
        handlers.pick_template, inputs=[c.template],
        outputs=[c.template_info, c.preview, c.template_area, c.prompt, c.model, c.send, c.run_template],
        api_visibility="undocumented", api_name="pick_template", **quick,
    )
    c.refresh_templates.click(
        handlers.refresh_templates, inputs=[c.template, c.template_revision],
        outputs=[c.template, c.template_revision, c.template_info, c.preview],
        api_visibility="undocumented", api_name="refresh_templates", **quick,
    )
    c.template.focus(handlers.list_templates, inputs=[c.template], outputs=[c.template],
                     api_visibility="private", **quick)
    # For API callers: the preview of a template with these variables (the page renders its own).
    gr.on([], handlers.preview, inputs=[c.template, c.template_values], outputs=[c.preview],
          api_name="preview", **quick)


def build_demo(context: AppContext) -> gr.Blocks:
    """The whole app as a gr.Blocks, its queue sized from `context.settings.ui` (`fairness.py`)."""
    ui = context.settings.ui
    limit = run_limit(context)
    with GuardedBlocks(title=TITLE, analytics_enabled=False, fill_width=False) as demo:
        with gr.Row(equal_height=False):
            gr.Markdown(f"## {TITLE}\nStream an answer, stop it any time, see what it cost.", elem_id="page-header")
            if context.auth is not None:
                # A link to a one-button confirmation page (`GET /logout`, web/login.py), in this tab:
                # Gradio's Markdown drops forms and opens links in a new tab, gr.HTML needs the eval our
                # CSP forbids, and an event handler cannot clear the session cookie.
                gr.Button("Log out", link="/logout", link_target="_self", size="sm", variant="secondary",
                          elem_id="logout", scale=0, min_width=80)
        # What the browser keeps, outside the tabs: a component in a tab not shown yet is not
        # mounted, and an unmounted BrowserState hands the page load its default, not the kept value.
        chat_saved = browser_state(context, CHAT_STORAGE_KEY)
        compare_saved = browser_state(context, compare.STORAGE_KEY)
        with gr.Tabs(elem_id="tabs") as tabs:
            with gr.Tab("Chat", id=CHAT_TAB) as chat_tab:
                components = build_components(context, chat_saved)
                chat_handlers = ChatHandlers(context)
                wire_events(components, chat_handlers, limit, demo)
            with gr.Tab("Compare", id="compare-tab"):
                compared = compare.build(context, limit, demo, compare_saved)
            # These two take an int limit: `unlimit_runs` below gives their run events `limit`.
            with gr.Tab("Evaluate", id="evaluate-tab"):
                eval_models = evaluate.build(context, ui.concurrency)
            with gr.Tab("History", id="history-tab") as history_tab:
                past = history.build(context, ui.concurrency)
            # Hidden until the page load shows it to a role that may see everyone's usage.
            with gr.Tab("Usage", id=USAGE_TAB, visible=False) as usage_tab:
                used = usage.build(context)
        past.refresh_on(history_tab.select)  # runs made since the page opened show up
        used.refresh_on(usage_tab.select)
        chat_tab.select(chat_handlers.spend, outputs=[components.spend], queue=False, show_progress="hidden",
                        api_visibility="private")  # what Compare and Evaluate spent shows too
        pickers = ModelPickers(context)
        pickers.add(components.model, note=True)
        for picker in compared.models:
            pickers.add(picker, first=[compare.TEMPLATE_MODEL])
        pickers.add(eval_models)
        pickers.add(past.model_filter, first=[ANY])
        pickers.wire(demo)
        RolePage(
            chat_handlers, chat_template=components.template, chat_info=components.template_info,
            prompt=components.prompt, system=components.system, send=components.send,
            note=components.templates_only, spend=components.spend, compare_templates=compared.templates,
            history_templates=past.template_filter, usage_tab=usage_tab,
            eval_template=_by_elem_id(demo, "eval-template", gr.Dropdown),
            eval_upload=_by_elem_id(demo, "eval-upload", gr.File),
        ).wire(demo)
        wire_open_conversation(components, chat_handlers, past.open_in_chat.click, past.selected_conversation, tabs)
        evaluate.wire_run_permalink(past, tabs)  # `/?run=ID` opens the run in History
    unlimit_runs(demo, limit)
    demo.redact = context.redact  # the sentences of refused values (`api_guard`)
    demo.max_threads = thread_cap(context.settings, limit)  # read by queue() below; launch() would reset it
    # Queue estimates (the place in Gradio's line) once a second, not to every waiting event each
    # time one starts: 100 users asking at once got ~17 estimate messages each, on the loop before
    # their first texts (bench/bench_gradio_load.py); the run events hide Gradio's progress anyway.
    demo.queue(default_concurrency_limit=ui.concurrency, max_size=ui.queue_size,
               status_update_rate=QUEUE_ESTIMATES_EVERY)
    return demo


C = TypeVar("C", bound=gr.components.Component)


def _by_elem_id(demo: gr.Blocks, elem_id: str, kind: type[C]) -> C | None:
    """The component another tab's module built with `elem_id` (it does not return it); None, and a
    warning, if there is not exactly one (the service still refuses what the role may not do)."""
    found = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == elem_id and isinstance(b, kind)]
    if len(found) != 1:
        log.warning("expected one %s #%s in the page, found %d: not fitted to roles", kind.__name__, elem_id,
                    len(found))
        return None
    return found[0]


def wire_open_conversation(
    chat: ChatComponents,
    handlers: ChatHandlers,
    trigger: Callable[..., Any],
    conversation_id: gr.components.Component,
    tabs: gr.Tabs,
) -> None:
    """When `trigger` fires (e.g. `open_button.click`), load the conversation whose id
    `conversation_id` holds into the chat and switch `tabs` to the Chat tab.

    The same path as a page load's restore: only the login that started it gets it (another sees a
    warning and an empty chat), an answer still streaming here is followed, and the browser keeps
    the id so a reload shows it again. While the chat streams an answer, opening is refused with a
    warning: that stream would go on writing into the page. Call inside the same `gr.Blocks` as
    `chat`."""
    trigger(lambda: gr.Tabs(selected=CHAT_TAB), outputs=[tabs], queue=False, show_progress="hidden",
            api_visibility="private")
    trigger(handlers.open_conversation, inputs=[conversation_id, chat.run_id],
            api_visibility="private", **run_options(chat.outputs, run_limit(handlers.context)))


def page_options() -> dict[str, Any]:
    """What both `mount_gradio_app` (web/app.py) and `Blocks.launch` (reload mode) get."""
    return dict(
        css=CSS,
        # Also as a meta tag, for `gradio app.py` reload mode where our middleware is not in place.
        head=f'<meta http-equiv="Content-Security-Policy" content="{META_POLICY}">',
        footer_links=["api"],
        run_history=False,
        show_error=False,  # never show exception text in the page; handlers say what went wrong
        ssr_mode=False,
        mcp_server=False,
        max_file_size="10mb",  # Evaluate's dataset upload; larger files are refused before they land
    )
