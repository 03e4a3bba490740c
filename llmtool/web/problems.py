"""RFC 9457 problem details: every error `/api` answers is `application/problem+json`.

    raise Problem("not-found", f"no run {run_id}")       # in a route: 404, the clear sentence as `detail`
    install(app)                                         # the handlers: validation errors, usage errors,
                                                         # anything unexpected (logged, never a traceback)

Each problem has a stable `type` (`/api/problems/<slug>`, which also answers with its description)
and a `detail` that is the sentence the CLI would print for the same mistake. Only `/api` paths get
these answers; everything else keeps FastAPI's (and Gradio's) own.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, PlainTextResponse, Response

from llmtool.errors import (
    BudgetExceededError,
    EvaluationTooLargeError,
    LimitExceededError,
    LLMToolError,
    MissingKeyError,
    PermissionDeniedError,
    ServerDrainingError,
    UnknownModelError,
    UsageError,
)
from llmtool.store import StoreError

log = logging.getLogger(__name__)

API_PREFIX = "/api"
MEDIA_TYPE = "application/problem+json"


@dataclass(frozen=True)
class ProblemType:
    status: int
    title: str


# slug → (status, title). Slugs are part of the API: never rename one.
PROBLEM_TYPES: dict[str, ProblemType] = {
    "invalid-request": ProblemType(422, "The request is not valid"),
    "unknown-model": ProblemType(422, "Unknown model"),
    "missing-key": ProblemType(422, "The model's provider has no API key"),
    "unknown-template": ProblemType(422, "Unknown template"),
    "body-too-large": ProblemType(413, "The request body is too large"),
    "unsupported-media-type": ProblemType(415, "The request body is not JSON"),
    "unauthorized": ProblemType(401, "Login required"),
    "forbidden": ProblemType(403, "Your role does not allow this"),
    "evaluation-too-large": ProblemType(403, "The evaluation is larger than your role allows"),
    "too-many-runs": ProblemType(429, "Too many runs"),
    "budget-exceeded": ProblemType(429, "Budget spent"),
    "not-found": ProblemType(404, "Not found"),
    "method-not-allowed": ProblemType(405, "Method not allowed"),
    "conversation-busy": ProblemType(409, "A run is already pending in this conversation"),
    "idempotency-conflict": ProblemType(409, "This Idempotency-Key belongs to a request still being processed"),
    "run-elsewhere": ProblemType(409, "The run is running in another process"),
    "busy": ProblemType(503, "The server is busy"),
    "draining": ProblemType(503, "The server is draining"),
    "store-unavailable": ProblemType(503, "The run store is unavailable"),
    "internal": ProblemType(500, "Internal error"),
}


def type_uri(slug: str) -> str:
    return f"{API_PREFIX}/problems/{slug}"


class Problem(Exception):
    """An error answer: `raise Problem(slug, detail)`; `headers` go with it (WWW-Authenticate…)."""

    def __init__(self, slug: str, detail: str, *, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail)
        if slug not in PROBLEM_TYPES:
            raise ValueError(f"unknown problem type {slug!r}")
        self.slug = slug
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra

    @property
    def status(self) -> int:
        return PROBLEM_TYPES[self.slug].status


def problem_response(problem: Problem, instance: str | None = None) -> JSONResponse:
    kind = PROBLEM_TYPES[problem.slug]
    body: dict[str, Any] = {
        "type": type_uri(problem.slug),
        "title": kind.title,
        "status": kind.status,
        "detail": problem.detail,
        **problem.extra,
    }
    if instance is not None:
        body["instance"] = instance
    return JSONResponse(body, status_code=kind.status, headers=problem.headers, media_type=MEDIA_TYPE)


def usage_problem(error: UsageError) -> Problem:
    """The problem for a usage error the service or a template raised (its message, as the CLI says it).

    What a login's role does not allow (a model, a template, a prompt of its own) is 403 `forbidden`:
    the request is understood and refused for this login (another user's *runs* are 404, as if absent).
    A limit that lifts with time (runs per minute, runs waiting, a budget) is 429 with `Retry-After`
    and `retry_after` (seconds) in the body; an evaluation larger than the role allows is 403."""
    from llmtool.templates.errors import UnknownTemplateError

    if isinstance(error, ServerDrainingError):  # shutting down: another replica (or this one, restarted) takes it
        return Problem("draining", error.message, headers={"Retry-After": "5"})
    if isinstance(error, LimitExceededError) and not isinstance(error, EvaluationTooLargeError):
        slug = "budget-exceeded" if isinstance(error, BudgetExceededError) else "too-many-runs"
        if error.retry_after is None:
            return Problem(slug, error.message)
        seconds = max(1, math.ceil(error.retry_after))
        return Problem(slug, error.message, headers={"Retry-After": str(seconds)}, retry_after=seconds)
    if isinstance(error, EvaluationTooLargeError):
        slug = "evaluation-too-large"
    elif isinstance(error, PermissionDeniedError):
        slug = "forbidden"
    elif isinstance(error, UnknownModelError):
        slug = "unknown-model"
    elif isinstance(error, MissingKeyError):
        slug = "missing-key"
    elif isinstance(error, UnknownTemplateError):
        slug = "unknown-template"
    else:
        slug = "invalid-request"
    return Problem(slug, error.message)


def describe_request_errors(errors: Any) -> str:
    """FastAPI's validation errors (query, path, header) as one line: 'query limit: …; …'."""
    parts = []
    for error in errors:
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        loc = [str(p) for p in error.get("loc", ())]
        where = f"{loc[0]} {'.'.join(loc[1:])}" if len(loc) > 1 else ".".join(loc)
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts) or "the request is not valid"


def _is_api(request: Request) -> bool:
    path = request.url.path
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def install(app: FastAPI) -> None:
    """Problem answers for `/api` (FastAPI's own answers elsewhere)."""

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return problem_response(exc, request.url.path)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if not _is_api(request):
            return await request_validation_exception_handler(request, exc)
        return problem_response(Problem("invalid-request", describe_request_errors(exc.errors())), request.url.path)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if not _is_api(request):
            return await http_exception_handler(request, exc)
        slug = {401: "unauthorized", 404: "not-found", 405: "method-not-allowed", 413: "body-too-large",
                415: "unsupported-media-type", 409: "conversation-busy", 503: "busy"}.get(exc.status_code)
        if slug is None:
            slug = "invalid-request" if 400 <= exc.status_code < 500 else "internal"
        return problem_response(Problem(slug, str(exc.detail), headers=dict(exc.headers or {})), request.url.path)

    async def on_usage(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, UsageError)
        return problem_response(usage_problem(exc), request.url.path)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # The store's reads raise SQLAlchemy's errors as they are: a database that went away.
        store_down = isinstance(exc, (StoreError, SQLAlchemyError))
        if not _is_api(request):
            if store_down:
                log.error("the run store failed answering %s: %s", request.url.path, exc)
                return PlainTextResponse("The run store cannot be used right now: try again in a moment.",
                                         status_code=503, headers={"Retry-After": "5"})
            log.exception("unexpected error answering %s", request.url.path)
            return PlainTextResponse("Internal Server Error", status_code=500)
        if store_down:
            reason = exc.message if isinstance(exc, StoreError) else "the database did not answer"
            log.error("the run store failed answering %s: %s", request.url.path, exc)
            problem = Problem("store-unavailable", f"the run store cannot be used right now: {reason}",
                              headers={"Retry-After": "5"})
        elif isinstance(exc, LLMToolError):
            log.error("%s failed: %s", request.url.path, exc.message)
            problem = Problem("internal", exc.message)
        else:
            log.exception("unexpected error answering %s", request.url.path)
            problem = Problem("internal", f"llmtool failed unexpectedly ({type(exc).__name__}); "
                                          "the server log has the details")
        return problem_response(problem, request.url.path)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(UsageError, on_usage)
    app.add_exception_handler(Exception, on_unexpected)
