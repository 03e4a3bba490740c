"""The API's OpenAPI schema and its docs page, served from our own origin (no CDN, no inline script).

    GET /api/openapi.json      the schema (behind the login, like every `/api` route)
    GET /api/docs              Swagger UI: the files of the `swagger-ui-py` package (its vendored
                               swagger-ui dist) plus `docs.js`, our few lines that start it
    GET /api/docs/assets/NAME  those files

The page carries its own Content-Security-Policy, stricter than the app's: scripts from our origin
only (`script-src 'self'`, no inline script), nothing remote. Without the package installed the page
is a plain server-rendered list of the endpoints, read from the same schema.
"""

from __future__ import annotations

import html
import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Match

from llmtool.web.problems import MEDIA_TYPE, PROBLEM_TYPES, Problem

ASSETS = {  # the only files served, name → media type
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-32x32.png": "image/png",
}
DOCS_SCRIPT = """\
// Starts Swagger UI on /api/docs (a file, not an inline script: the page's CSP allows none).
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/api/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    tryItOutEnabled: false,
  });
});
"""
DOCS_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",  # Swagger UI sets style attributes on its elements
    "img-src 'self' data:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'self'",
])
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>llmtool API</title>
<link rel="stylesheet" href="/api/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/api/docs/assets/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"><noscript><p>This page needs JavaScript; the schema is at
<a href="/api/openapi.json">/api/openapi.json</a>.</p></noscript></div>
<script src="/api/docs/assets/swagger-ui-bundle.js"></script>
<script src="/api/docs/assets/docs.js"></script>
</body>
</html>
"""


@lru_cache(maxsize=1)
def swagger_dir() -> Path | None:
    """The swagger-ui dist the `swagger-ui-py` package ships, or None without it."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    static = Path(next(iter(spec.submodule_search_locations))) / "static"
    return static if all((static / name).is_file() for name in ASSETS) else None


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these problem statuses."""
    titles: dict[int, list[str]] = {}
    for kind in PROBLEM_TYPES.values():
        titles.setdefault(kind.status, []).append(kind.title)
    return {code: {"description": "; ".join(titles.get(code, ["Problem"])),
                   "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
            for code in codes}


def create_run_body() -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/CreateRun"}}}}}


PROBLEM_SCHEMA = {
    "title": "Problem", "type": "object", "description": "RFC 9457 problem details.",
    "properties": {
        "type": {"type": "string", "description": "Stable: /api/problems/<slug>."},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "What is wrong, for a person (as the CLI says it)."},
        "instance": {"type": "string"},
    },
    "required": ["type", "title", "status", "detail"],
}


def openapi_schema(api: APIRouter) -> dict[str, Any]:
    from llmtool.web.api_body import CreateRun

    schema = get_openapi(title="llmtool API", version="1", routes=api.routes, description=(
        "Runs as jobs: POST /api/runs answers 202 with Location; follow GET /api/runs/{id} or its "
        "event stream (resume with Last-Event-ID); errors are application/problem+json."))
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    body = CreateRun.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(body.pop("$defs", {}))
    components["CreateRun"] = body
    components["Problem"] = PROBLEM_SCHEMA
    return schema


def docs_router(api: APIRouter) -> APIRouter:
    docs = APIRouter(tags=["meta"])
    cache: dict[str, Any] = {}

    @docs.get("/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        if "schema" not in cache:
            cache["schema"] = openapi_schema(api)
        return JSONResponse(cache["schema"])

    @docs.get("/docs", include_in_schema=False)
    async def docs_page() -> HTMLResponse:
        if swagger_dir() is None:
            if "schema" not in cache:
                cache["schema"] = openapi_schema(api)
            return HTMLResponse(endpoint_list(cache["schema"]), headers={"Content-Security-Policy": DOCS_POLICY})
        return HTMLResponse(PAGE, headers={"Content-Security-Policy": DOCS_POLICY, "Cache-Control": "no-cache"})

    @docs.get("/docs/assets/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        if name == "docs.js":
            return Response(DOCS_SCRIPT, media_type="text/javascript")
        directory = swagger_dir()
        if name not in ASSETS or directory is None:
            raise Problem("not-found", f"no docs asset {name!r}")
        return FileResponse(directory / name, media_type=ASSETS[name],
                            headers={"Cache-Control": "public, max-age=86400"})

    @docs.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
                    include_in_schema=False)
    async def unknown(request: Request, rest: str) -> Response:
        """Anything else under /api: a problem, not Gradio's page (Gradio is mounted at `/`)."""
        allowed = sorted({method for route in api.routes if getattr(route, "path", "") != "/api/{rest:path}"
                          and route.matches(request.scope)[0] == Match.PARTIAL
                          for method in (getattr(route, "methods", None) or ())})
        if allowed:
            raise Problem("method-not-allowed", f"{request.method} is not allowed here; use {', '.join(allowed)}",
                          headers={"Allow": ", ".join(allowed)})
        raise Problem("not-found", f"no API endpoint {request.method} /api/{rest}: see /api/docs")

    return docs


def endpoint_list(schema: dict[str, Any]) -> str:
    """The no-package docs page: every operation with its summary, as plain HTML."""
    rows = []
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            summary = operation.get("description") or operation.get("summary") or ""
            rows.append(f"<li><code>{html.escape(method.upper())} {html.escape(path)}</code> — "
                        f"{html.escape(summary)}</li>")
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>llmtool API</title></head>"
            "<body><h1>llmtool API</h1><p>The schema: <a href=\"/api/openapi.json\">/api/openapi.json</a>.</p>"
            f"<ul>{''.join(rows)}</ul></body></html>")
