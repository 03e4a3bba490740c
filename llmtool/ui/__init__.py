"""The browser tool: Chat, Compare and Evaluate tabs over LLMService, built on the app's context.

    blocks.py    the tabs; lay out the chat tab's components, wire them to the handlers; page options
    handlers.py  thin async generator handlers: start a run, read its events, yield page updates
    template_panel.py  the template picker and its variable fields (@gr.render)
    template_fields.py variables → fields, fields → values, preview, template list (pure)
    compare.py   the Compare tab: one set of variables, 2–4 template × model columns at once
    evaluate.py  the Evaluate tab: a template over a dataset × models, progress, table, export
    eval_*.py    its parts: a running job, charts, baseline comparison, cell detail, permalinks, stored reads
    eval_table.py  an evaluation as text: progress line, summary, cases × models table (pure)
    streams.py   the concurrency group, batching and merging of event streams
    coalesce.py  at most one page update per interval, the last never held back
    status.py    events → status line and validation line (pure)
    transcript.py turns → Chatbot messages and provider messages; a reasoning model's thoughts (pure)
    model_pickers.py  the model pickers offer the providers' live lists (refreshed on page load)
    roles.py     what a login's role is offered (templates, prompts, uploads); role_page.py fits the page on load
    fairness.py  with logins, run events leave queueing to the service's fair scheduler
    usage.py     the admin Usage tab (runs and spend per user per day)
    inputs.py, api_guard.py  every field read with a sentence for a bad value; requests checked before Gradio
    lean_blocks.py  what Gradio does per update or event that grows with the users and serves nothing here
    launch.py    `python app.py`: flags, logins, --share

Every tab receives the `llmtool.web.context.AppContext` that `llmtool.web.app.create_app` built
(or, under `gradio app.py`, `launch.module_demo`); nothing here creates the service. Only this
package, `llmtool/web/app.py` (which mounts it) and app.py import gradio.
"""

from llmtool.ui.blocks import build_demo

__all__ = ["build_demo"]
