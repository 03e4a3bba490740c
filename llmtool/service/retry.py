"""When and how long to wait before trying a failed attempt again (tenacity, our policy).

Retried: failures the provider or our classification call transient (429, 408, 409, 5xx, 529,
connection errors, connect and first-token timeouts, a stream that ended early), and only while no
text has reached the user. `x-should-retry` overrides the classification. A `retry-after` is
honoured when it is no longer than `max_retry_after`; a longer one ends the run at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base

from llmtool.errors import ProviderError
from llmtool.settings import RetryPolicy

_SHORT_REASON = {
    "rate_limited": "rate limited",
    "overloaded": "provider overloaded",
    "server_error": "provider error",
    "connection_failed": "connection failed",
    "connect_timeout": "could not connect in time",
    "first_token_timeout": "no first token in time",
    "stream_ended_early": "stream ended early",
}


def short_reason(error: ProviderError) -> str:
    reason = _SHORT_REASON.get(error.kind, error.kind.replace("_", " "))
    return f"{reason} (HTTP {error.status})" if error.status else reason


def retry_after_too_long(error: BaseException, policy: RetryPolicy) -> bool:
    return (
        isinstance(error, ProviderError)
        and error.retry_after is not None
        and error.retry_after > policy.max_retry_after
    )


class stop_when_waits_exceed(stop_base):
    """Stop when the waits so far plus the next would pass `max_retry_time` (attempt time does not
    count: a first-token timeout as long as the budget must still be retried), or when the next
    wait would outlast the run's own deadline — then the provider's error is the honest report."""

    def __init__(self, max_retry_time: float, time_left: Callable[[], float]) -> None:
        self.max_retry_time = max_retry_time
        self.time_left = time_left

    def __call__(self, state: RetryCallState) -> bool:
        upcoming = state.upcoming_sleep
        return state.idle_for + upcoming > self.max_retry_time or upcoming >= self.time_left()


def build_retrying(
    policy: RetryPolicy,
    may_retry: Callable[[], bool],
    announce: Callable[[int, float, ProviderError], None],
    time_left: Callable[[], float],
) -> AsyncRetrying:
    """A tenacity retrier; `may_retry()` says whether no text has reached the user yet,
    `time_left()` how many seconds remain before the run's deadline."""
    backoff = wait_exponential_jitter(
        multiplier=policy.initial_delay, max=policy.max_delay, jitter=policy.jitter
    )

    def retryable(error: BaseException) -> bool:
        return (
            isinstance(error, ProviderError)
            and error.wants_retry
            and may_retry()
            and not retry_after_too_long(error, policy)
        )

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, ProviderError) and error.retry_after is not None:
            return error.retry_after
        return backoff(state)

    def before_sleep(state: RetryCallState) -> Awaitable[None] | None:
        error = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        assert isinstance(error, ProviderError)
        announce(state.attempt_number + 1, delay, error)
        return None

    return AsyncRetrying(
        stop=stop_after_attempt(policy.max_attempts) | stop_when_waits_exceed(policy.max_retry_time, time_left),
        wait=wait,
        retry=retry_if_exception(retryable),
        before_sleep=before_sleep,
        reraise=True,
        sleep=asyncio.sleep,
    )
