"""HTTP error bodies in the exact shapes OpenAI and Anthropic return them (pure functions)."""

from __future__ import annotations

import json
from typing import Any

from .protocols import Protocol

# status -> (type, code, message) as the OpenAI API reports it.
_OPENAI_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: (
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided: test. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
    ),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Permission denied."),
    404: ("invalid_request_error", None, "Not found."),
    409: ("invalid_request_error", None, "Conflict."),
    422: ("invalid_request_error", None, "Unprocessable entity."),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests. Please try again in 200ms.",
    ),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
    504: ("server_error", None, "Gateway timeout."),
}

# status -> (type, message) as the Anthropic API reports it.
_ANTHROPIC_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low."),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit."),
    500: ("api_error", "Internal server error"),
    503: ("api_error", "Service unavailable"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def openai_error(
    status: int,
    error_type: str | None = None,
    message: str | None = None,
    code: str | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    """``{"error": {...}}`` for an OpenAI endpoint; unknown statuses fall back to 4xx/5xx defaults."""
    default = _OPENAI_ERRORS.get(status) or _OPENAI_ERRORS[500 if status >= 500 else 400]
    return {
        "error": {
            "message": message or default[2],
            "type": error_type or default[0],
            "param": param,
            "code": code if code is not None else default[1],
        }
    }


def anthropic_error(
    status: int, error_type: str | None = None, message: str | None = None, request_id: str = ""
) -> dict[str, Any]:
    """``{"type": "error", "error": {...}, "request_id": ...}`` for the Anthropic endpoint."""
    default = _ANTHROPIC_ERRORS.get(status) or _ANTHROPIC_ERRORS[500 if status >= 500 else 400]
    return {
        "type": "error",
        "error": {"type": error_type or default[0], "message": message or default[1]},
        "request_id": request_id,
    }


def error_body(
    protocol: Protocol | None,
    status: int,
    *,
    error_type: str | None = None,
    message: str | None = None,
    request_id: str = "",
    code: str | None = None,
    param: str | None = None,
) -> bytes:
    """The JSON body for an HTTP error; the Anthropic shape for ``/v1/messages``, OpenAI otherwise.

    ``code`` and ``param`` exist only in the OpenAI shape and are ignored for Anthropic.
    """
    if protocol == "messages":
        return _dumps(anthropic_error(status, error_type, message, request_id))
    return _dumps(openai_error(status, error_type, message, code, param))


def model_not_found_body(protocol: Protocol | None, model: str, request_id: str = "") -> bytes:
    """The 404 each provider returns for a model it does not serve, worded as the real APIs word it."""
    if protocol == "messages":
        return _dumps(anthropic_error(404, "not_found_error", f"model: {model}", request_id))
    message = f"The model `{model}` does not exist or you do not have access to it."
    return _dumps(openai_error(404, "invalid_request_error", message, "model_not_found"))
