"""The one boundary where OpenAI and Anthropic SDK errors become llmtool errors.

Both SDKs are generated from the same template and share their exception names, so one mapper
serves both; each adapter wraps its whole call (request *and* iteration) in `map_sdk_errors`.
It also catches what the SDKs leak: raw `httpx2` transport errors raised while iterating
(Anthropic), JSON errors from malformed events, and error events reported as `APIError` (OpenAI,
no status) or as `APIStatusError` with status 200 (Anthropic).
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import aiohttp
import httpx2

from llmtool import errors

_EVENT_ERROR_TYPES: dict[str, type[errors.ProviderError]] = {
    "overloaded_error": errors.OverloadedError,
    "rate_limit_error": errors.RateLimitedError,
    "too_many_requests": errors.RateLimitedError,
    "rate_limit_exceeded": errors.RateLimitedError,
    "api_error": errors.ServerError,
    "server_error": errors.ServerError,
    "internal_server_error": errors.ServerError,
}

_STATUS_WORDS = {
    400: "rejected the request",
    401: "refused the API key",
    403: "refused access",
    404: "does not know this model or endpoint",
    408: "timed out the request",
    409: "reported a conflict",
    413: "says the request is too large",
    422: "could not process the request",
    429: "rate limited the request",
    500: "had an internal error",
    502: "had a gateway error",
    503: "is unavailable",
    504: "had a gateway timeout",
    529: "is overloaded",
}


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The delay a response asks for: `retry-after-ms`, then `retry-after` (seconds or HTTP date)."""
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / divisor
            # 'nan' or 'inf' parse as floats but ask for nothing sensible: ignore them
            return max(seconds, 0.0) if math.isfinite(seconds) else None
        except ValueError:
            parsed = email.utils.parsedate_tz(value)
            if parsed is not None:
                return max(float(email.utils.mktime_tz(parsed) - time.time()), 0.0)
    return None


def should_retry_header(headers: Mapping[str, str]) -> bool | None:
    value = (headers.get("x-should-retry") or "").strip().lower()
    return {"true": True, "false": False}.get(value)


def _body_message(body: Any, fallback: str) -> str:
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"]
        if isinstance(body.get("message"), str):
            return body["message"]
    return fallback


def _body_type(body: Any) -> str | None:
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            kind = inner.get("type") or inner.get("code")
            return str(kind) if kind else None
    return None


def stream_error(provider: str, body: Any, fallback: str) -> errors.ProviderError:
    """An error event inside a stream, classified by its type (overloaded, rate limit…)."""
    kind = _body_type(body)
    cls = _EVENT_ERROR_TYPES.get(kind or "", errors.StreamErrorEvent)
    detail = _body_message(body, fallback)
    return cls(f"{provider} reported an error mid-stream ({kind or 'unknown'}): {detail}")


def _status_error(provider: str, exc: Any, model: str | None = None) -> errors.ProviderError:
    status: int = exc.status_code
    headers = exc.response.headers
    detail = _body_message(exc.body, str(exc.message))
    if status == 404 and model is not None and _about_model(exc.body, detail, model):
        return errors.ModelNotFoundError(
            f"{provider} does not know model {model!r} (HTTP 404: {detail}); check the name "
            f"against the models {provider} lists",
            status=404,
        )
    what = _STATUS_WORDS.get(status, "answered with an error")
    return errors.error_for_status(
        status,
        f"{provider} {what} (HTTP {status}): {detail}",
        retry_after=retry_after_seconds(headers),
        should_retry=should_retry_header(headers),
    )


def _about_model(body: Any, detail: str, model: str) -> bool:
    """Whether a 404 is about the model, not a wrong base URL path (Anthropic's not_found_error is
    its 404 for anything, so only a message naming the model counts)."""
    return _body_type(body) == "model_not_found" or model in detail


def _transport_error(provider: str, exc: BaseException) -> errors.ProviderError:
    # The SDKs wrap httpx2 errors (the cause); the Anthropic SDK leaks them raw (the error itself).
    chain = (exc, exc.__cause__, exc.__context__)
    cause = next((e for e in chain if isinstance(e, httpx2.HTTPError)), exc)
    if isinstance(cause.__cause__, aiohttp.ClientError):
        cause = _as_httpx2(cause.__cause__)
    name = type(cause).__name__
    if isinstance(cause, httpx2.ConnectTimeout):
        return errors.ConnectTimeoutError(f"could not connect to {provider} in time")
    if isinstance(cause, httpx2.TimeoutException):
        return errors.IdleTimeoutError(f"{provider} sent nothing for too long ({name})")
    if isinstance(cause, httpx2.ConnectError):
        return errors.ConnectionFailedError(f"could not connect to {provider} ({name})")
    if isinstance(cause, (httpx2.LocalProtocolError, httpx2.UnsupportedProtocol)):
        # Our side could not even form the request: retrying cannot help.
        return errors.ConnectionFailedError(
            f"llmtool could not send the request to {provider} ({name}): check its key and base URL",
            retryable=False,
        )
    return errors.ConnectionFailedError(f"the connection to {provider} was lost ({name})")


def _as_httpx2(error: aiohttp.ClientError) -> httpx2.TransportError:
    """aiohttp's error as the httpx2 error it means (see llmtool.providers.http_client): the SDKs'
    adapter maps every connection error to httpx2.ConnectTimeout, a refused connection and a reset
    mid-stream included."""
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return httpx2.ConnectTimeout(str(error))
    if isinstance(error, aiohttp.ServerTimeoutError):
        return httpx2.ReadTimeout(str(error))
    if isinstance(error, aiohttp.ClientConnectorError):
        return httpx2.ConnectError(str(error))
    return httpx2.ReadError(str(error))


@contextmanager
def map_sdk_errors(sdk: ModuleType, provider: str, model: str | None = None) -> Iterator[None]:
    """Re-raise anything the `sdk` (openai or anthropic) or httpx2 raises as an llmtool error;
    `model`: the model the request named, so the provider's 404 for it reads clearly."""
    sdk_base: type[Exception] = getattr(sdk, "OpenAIError", None) or sdk.AnthropicError
    try:
        yield
    except errors.LLMToolError:
        raise
    except sdk.APIStatusError as exc:
        if exc.status_code == 200:  # Anthropic: an `event: error` inside a 200 stream
            raise stream_error(provider, exc.body, str(exc.message)) from exc
        raise _status_error(provider, exc, model) from exc
    except sdk.APIResponseValidationError as exc:
        raise errors.MalformedStreamError(f"{provider} sent data llmtool could not read") from exc
    except sdk.APIConnectionError as exc:  # includes APITimeoutError
        raise _transport_error(provider, exc) from exc
    except sdk.APIError as exc:  # OpenAI: an error payload inside the stream, no status
        raise stream_error(provider, exc.body, str(exc.message)) from exc
    except httpx2.TransportError as exc:  # leaked raw while iterating
        raise _transport_error(provider, exc) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise errors.MalformedStreamError(
            f"{provider} sent an event that is not valid JSON; the stream cannot be read"
        ) from exc
    except sdk_base as exc:
        raise errors.ProviderError(f"{provider} failed: {exc}") from exc
