"""The composition root: one FastAPI app with our routers, and the Gradio tool mounted last.

    context.py   AppContext: settings, the one LLMService, the template registry, redaction
    app.py       create_app(settings, context=…, auth=…): middleware, lifespan, routers, Gradio
    health.py    GET /healthz (no login)
    security.py  the Content-Security-Policy and the security-headers middleware
    serve.py     BackgroundServer: uvicorn in a thread, for tests and benchmarks

Import from the modules (`from llmtool.web.app import create_app`): this package imports nothing
itself, so `ui/` can use `web.context` without pulling in the app that mounts `ui/`.
"""
