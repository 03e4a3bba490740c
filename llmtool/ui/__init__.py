"""The browser tool: Chat, Compare and Evaluate tabs over LLMService, served from one FastAPI app.

    blocks.py    the tabs; lay out the chat tab's components, wire them to the handlers
    handlers.py  thin async generator handlers: start a run, read its events, yield page updates
    template_panel.py  the template picker and its variable fields (@gr.render)
    template_fields.py variables → fields, fields → values, preview, template list (pure)
    compare.py   the Compare tab: one set of variables, 2–4 template × model columns at once
    evaluate.py  the Evaluate tab: a template over a dataset × models, progress, table, export
    eval_table.py  an evaluation as text: progress line, summary, cases × models table (pure)
    streams.py   the concurrency group, batching and merging of event streams
    coalesce.py  at most one page update per interval, the last never held back
    status.py    events → status line and validation line (pure)
    transcript.py turns → Chatbot messages and provider messages (pure)
    redact.py    keep keys and credentialed URLs out of everything shown
    context.py   what the handlers share: settings, the one LLMService, the template registry
    server.py    FastAPI + Gradio + security headers; a background server for tests
    launch.py    `python app.py`: flags, logins, --share

Only this package (and app.py) imports gradio.
"""

from llmtool.ui.blocks import build_demo
from llmtool.ui.context import UIContext
from llmtool.ui.server import BackgroundServer, create_app

__all__ = ["BackgroundServer", "UIContext", "build_demo", "create_app"]
