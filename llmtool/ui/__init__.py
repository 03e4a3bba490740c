"""The browser tool: a Gradio chat tab over LLMService, served from one FastAPI app.

    blocks.py    lay out the components, wire them to the handlers
    handlers.py  thin async generator handlers: start a run, read its events, yield page updates
    coalesce.py  at most one page update per interval, the last never held back
    status.py    events → status line and validation line (pure)
    transcript.py turns → Chatbot messages and provider messages (pure)
    redact.py    keep keys and credentialed URLs out of everything shown
    context.py   what the handlers share: settings, the one LLMService, streams in flight
    server.py    FastAPI + Gradio + security headers; a background server for tests
    launch.py    `python app.py`: flags, logins, --share

Only this package (and app.py) imports gradio.
"""

from llmtool.ui.blocks import build_demo
from llmtool.ui.context import UIContext
from llmtool.ui.server import BackgroundServer, create_app

__all__ = ["BackgroundServer", "UIContext", "build_demo", "create_app"]
