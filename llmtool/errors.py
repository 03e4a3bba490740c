"""llmtool's own error classes: every SDK, transport and usage error becomes one of these.

Provider adapters translate at one boundary each; nothing above them sees an SDK exception.

    LLMToolError                       anything llmtool reports to a person
    ├── UsageError                     bad input from the user: fix the request, do not retry
    │   ├── UnknownModelError          PROVIDER:MODEL names no configured provider or known model
    │   ├── MissingKeyError            the provider needs an API key that is not set
    │   ├── InvalidRequestError        empty prompt, absurd settings, bad template variables…
    │   │   └── PermissionDeniedError  the login's role does not allow this model, template or prompt
    │   └── LimitExceededError         a limit of the login's role: wait `retry_after` seconds
    │       ├── TooManyRunsError       runs per minute, or too many waiting for a slot
    │       ├── BudgetExceededError    the day's or month's budget is spent
    │       └── EvaluationTooLargeError  more runs than the role's largest evaluation
    └── ProviderError                  a run failed talking to the provider
        ├── RateLimitedError           429                               retryable
        ├── OverloadedError            529 / overloaded_error            retryable
        ├── ServerError                408, 409, 5xx                     retryable
        ├── ConnectionFailedError      connect refused / reset / TLS     retryable
        ├── AuthenticationError        401, 403                          never retried
        ├── RequestRejectedError       400, 404, 413, 422                never retried
        │   └── ModelNotFoundError     404 for the model named           never retried
        ├── StreamEndedEarlyError      body ended without terminal event retryable
        ├── MalformedStreamError       unparseable event from provider   never retried
        ├── StreamErrorEvent           error event inside the stream     per the event's type
        ├── ResponseFailedError        OpenAI response.failed            never retried
        ├── ContentFilteredError       the provider refused the output  never retried
        └── LLMTimeoutError            one of our four limits ran out
            ├── ConnectTimeoutError    could not connect in time         retryable
            ├── FirstTokenTimeoutError no text before the TTFT limit    retryable
            ├── IdleTimeoutError       gap between deltas too long       (after text: final)
            └── DeadlineExceededError  the run's total time ran out     never retried

Whether a failure is *actually* retried is the service's call: never once text reached the user.
`should_retry` carries the provider's `x-should-retry` header, which overrides `retryable`.
"""

from __future__ import annotations

from typing import Any, Literal

ErrorKind = Literal[
    "usage",
    "unknown_model",
    "missing_key",
    "invalid_request",
    "rate_limited",
    "overloaded",
    "server_error",
    "connection_failed",
    "authentication",
    "request_rejected",
    "stream_ended_early",
    "malformed_stream",
    "stream_error",
    "response_failed",
    "content_filtered",
    "connect_timeout",
    "first_token_timeout",
    "idle_timeout",
    "reasoning_idle_timeout",
    "model_not_found",
    "deadline_exceeded",
    "internal",
    "permission_denied",
    "too_many_runs",
    "budget_exceeded",
    "evaluation_too_large",
    "draining",
]


class LLMToolError(Exception):
    """Base of every error llmtool reports. `message` is written for a person."""

    kind: ErrorKind = "internal"
    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(LLMToolError):
    """The request itself is wrong; the user must change it."""

    kind: ErrorKind = "usage"


class UnknownModelError(UsageError):
    kind: ErrorKind = "unknown_model"


class MissingKeyError(UsageError):
    kind: ErrorKind = "missing_key"


class InvalidRequestError(UsageError):
    kind: ErrorKind = "invalid_request"


class PermissionDeniedError(InvalidRequestError):
    """The login's role does not allow this (a model, a template, a prompt of its own): refused
    before anything is sent."""

    kind: ErrorKind = "permission_denied"


class LimitExceededError(UsageError):
    """A limit of the login's role (rate, budget, size). `retry_after`: seconds until asking again
    can succeed; None when waiting does not help."""

    kind: ErrorKind = "too_many_runs"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooManyRunsError(LimitExceededError):
    kind: ErrorKind = "too_many_runs"


class BudgetExceededError(LimitExceededError):
    kind: ErrorKind = "budget_exceeded"


class EvaluationTooLargeError(LimitExceededError):
    kind: ErrorKind = "evaluation_too_large"


class ServerDrainingError(UsageError):
    """This process is shutting down (SIGTERM): it finishes its running runs but starts no new one;
    another replica (or this server once restarted) takes the request. The API answers 503."""

    kind: ErrorKind = "draining"


class ProviderError(LLMToolError):
    """A failure while talking to a provider.

    `status` is the HTTP status when there was one; `retry_after` the delay (seconds) the provider
    asked for; `should_retry` the provider's explicit `x-should-retry` verdict, if it sent one.
    """

    kind: ErrorKind = "server_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        should_retry: bool | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.should_retry = should_retry
        if retryable is not None:
            self.retryable = retryable

    @property
    def wants_retry(self) -> bool:
        """The provider's `x-should-retry` header wins over our own classification."""
        return self.retryable if self.should_retry is None else self.should_retry


class RateLimitedError(ProviderError):
    kind: ErrorKind = "rate_limited"
    retryable = True


class OverloadedError(ProviderError):
    kind: ErrorKind = "overloaded"
    retryable = True


class ServerError(ProviderError):
    kind: ErrorKind = "server_error"
    retryable = True


class ConnectionFailedError(ProviderError):
    kind: ErrorKind = "connection_failed"
    retryable = True


class AuthenticationError(ProviderError):
    kind: ErrorKind = "authentication"
    retryable = False


class RequestRejectedError(ProviderError):
    kind: ErrorKind = "request_rejected"
    retryable = False


class ModelNotFoundError(RequestRejectedError):
    """The provider's own 404 for the model named in the request."""

    kind: ErrorKind = "model_not_found"


class StreamEndedEarlyError(ProviderError):
    kind: ErrorKind = "stream_ended_early"
    retryable = True


class MalformedStreamError(ProviderError):
    kind: ErrorKind = "malformed_stream"
    retryable = False


class StreamErrorEvent(ProviderError):
    kind: ErrorKind = "stream_error"
    retryable = False


class ResponseFailedError(ProviderError):
    kind: ErrorKind = "response_failed"
    retryable = False


class ContentFilteredError(ProviderError):
    kind: ErrorKind = "content_filtered"
    retryable = False


class LLMTimeoutError(ProviderError):
    kind: ErrorKind = "deadline_exceeded"
    retryable = False


class ConnectTimeoutError(LLMTimeoutError):
    kind: ErrorKind = "connect_timeout"
    retryable = True


class FirstTokenTimeoutError(LLMTimeoutError):
    kind: ErrorKind = "first_token_timeout"
    retryable = True


class IdleTimeoutError(LLMTimeoutError):
    kind: ErrorKind = "idle_timeout"
    retryable = False


class ReasoningIdleTimeoutError(LLMTimeoutError):
    """The model began to reason, then sent nothing for too long: never retried (billed thinking)."""

    kind: ErrorKind = "reasoning_idle_timeout"
    retryable = False


class DeadlineExceededError(LLMTimeoutError):
    kind: ErrorKind = "deadline_exceeded"
    retryable = False


def error_for_status(status: int, message: str, **extra: Any) -> ProviderError:
    """The most specific ProviderError for an HTTP status (used by every adapter)."""
    cls: type[ProviderError]
    if status == 429:
        cls = RateLimitedError
    elif status == 529:
        cls = OverloadedError
    elif status in (401, 403):
        cls = AuthenticationError
    elif status in (408, 409) or status >= 500:
        cls = ServerError
    else:
        cls = RequestRejectedError
    return cls(message, status=status, **extra)
