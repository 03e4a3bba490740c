"""Drives one run: attempts with retries, the four timeouts, stop, metrics and validation.

This is the only place that turns provider chunks into user-visible events, so the rule
"retry only before the first text reached the user" is enforced here and nowhere else.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import aclosing

from llmtool import errors
from llmtool.events import (
    Completed,
    Failed,
    FinishReason,
    Metrics,
    Retrying,
    RunEvent,
    Started,
    Stopped,
    TextDelta,
    Usage,
    Validated,
)
from llmtool.providers.base import (
    FinishChunk,
    Provider,
    ProviderRequest,
    TextChunk,
    UsageChunk,
)
from llmtool.redact import Redactor
from llmtool.service.retry import build_retrying, retry_after_too_long, short_reason
from llmtool.service.runs import Run
from llmtool.settings import RetryPolicy, Timeouts
from llmtool.tokens import estimate_tokens

log = logging.getLogger(__name__)


class RunExecutor:
    def __init__(self, run: Run, provider: Provider, timeouts: Timeouts, policy: RetryPolicy,
                 redactor: Redactor | None = None) -> None:
        self.run = run
        self.redactor = redactor
        self.provider = provider
        self.timeouts = timeouts
        self.policy = policy
        self.loop = asyncio.get_running_loop()
        self.started_at = self.loop.time()
        self.attempts = 0
        self.released = False  # has any text reached consumers? then no more retries
        self.parts: list[str] = []
        self.deltas = 0
        self.first_text_at: float | None = None
        self.last_text_at: float | None = None
        self.usage = UsageChunk()
        self.finish: FinishReason = "other"
        self.buffered = run.request.validation.mode == "buffer"

    def _emit(self, event: RunEvent) -> None:
        """Into the run's log, keys masked: nothing downstream (readers, store, replay) sees one.
        (A key split across two deltas is not caught here.)"""
        self.run.append(self.redactor.mask_event(event) if self.redactor is not None else event)

    def elapsed(self) -> float:
        return self.loop.time() - self.started_at

    @property
    def text(self) -> str:
        return "".join(self.parts)

    async def execute(self) -> None:
        self._emit(Started(run_id=self.run.id, model=self.run.model.id))
        deadline_at = self.started_at + self.timeouts.total
        try:
            async with asyncio.timeout_at(deadline_at) as deadline:
                retrying = build_retrying(
                    self.policy,
                    may_retry=lambda: not self.released,
                    announce=self._announce_retry,
                    time_left=lambda: deadline_at - self.loop.time(),
                )
                await retrying(self._attempt)
            self._complete()
        except asyncio.CancelledError:
            self._emit(Stopped(elapsed=self.elapsed(), text=self.text, metrics=self._metrics(estimate=True)))
        except TimeoutError:
            if not deadline.expired():
                raise
            self._fail(errors.DeadlineExceededError(
                f"the run took longer than its {self.timeouts.total:g} s limit"
            ))
        except errors.LLMToolError as error:
            self._fail(error)
        except Exception as error:  # a bug of ours: still end the run cleanly, keep the text
            log.exception("run %s failed unexpectedly", self.run.id)
            self._fail(errors.LLMToolError(
                f"llmtool failed unexpectedly ({type(error).__name__}); the server log has the details"
            ))

    # -- one attempt --------------------------------------------------------------------------
    def _provider_request(self) -> ProviderRequest:
        request = self.run.request
        return ProviderRequest(
            model=self.run.model.name,
            messages=request.messages,
            system=request.system,
            temperature=request.temperature,
            max_output_tokens=request.max_output_tokens,
            connect_timeout=self.timeouts.connect,
            # The SDK's read timeout is only a backstop: ours below fire first.
            read_timeout=max(self.timeouts.first_token, self.timeouts.idle) + 5.0,
            json_schema=request.validation.json_schema,
        )

    async def _attempt(self) -> None:
        self.attempts += 1
        # Retries happen only while nothing was released, so each attempt starts from scratch.
        self.parts, self.deltas, self.usage, self.first_text_at = [], 0, UsageChunk(), None
        attempt_started = self.loop.time()
        stream = self.provider.stream(self._provider_request())
        try:
            # One timer for the attempt: first the time-to-first-token limit, then, after each
            # delta, pushed forward by the idle limit.
            async with asyncio.timeout_at(attempt_started + self.timeouts.first_token) as limit:
                async with aclosing(stream):
                    async for chunk in stream:
                        if isinstance(chunk, TextChunk):
                            if chunk.text:
                                self._on_text(chunk.text)
                                limit.reschedule(self.loop.time() + self.timeouts.idle)
                        elif isinstance(chunk, UsageChunk):
                            self.usage = chunk
                        elif isinstance(chunk, FinishChunk):
                            self.finish = chunk.reason
                            return
            raise errors.StreamEndedEarlyError(
                f"the stream ended early: {self.provider.name} sent no end of answer"
            )
        except TimeoutError:
            if not limit.expired():
                raise
            if not self.parts:
                raise errors.FirstTokenTimeoutError(
                    f"{self.provider.name} sent no text within {self.timeouts.first_token:g} s"
                ) from None
            raise errors.IdleTimeoutError(
                f"{self.provider.name} stopped sending for more than {self.timeouts.idle:g} s"
            ) from None

    def _on_text(self, text: str) -> None:
        now = self.loop.time()
        if self.first_text_at is None:
            self.first_text_at = now
        self.last_text_at = now
        self.parts.append(text)
        self.deltas += 1
        if not self.buffered:
            self.released = True
            self._emit(TextDelta(elapsed=now - self.started_at, text=text))

    def _announce_retry(self, attempt: int, delay: float, error: errors.ProviderError) -> None:
        self._emit(Retrying(
            elapsed=self.elapsed(),
            attempt=attempt,
            max_attempts=self.policy.max_attempts,
            delay=delay,
            error_kind=error.kind,
            reason=short_reason(error),
        ))

    # -- endings ------------------------------------------------------------------------------
    def _complete(self) -> None:
        text = self.text
        usage = self._usage_event()
        self._emit(usage)
        rules = self.run.request.validation
        problems = rules.check(text) if rules.rule_count else []
        self._emit(Validated(
            elapsed=self.elapsed(), passed=not problems, problems=problems, rules_checked=rules.rule_count
        ))
        if self.buffered and not problems:
            self._emit(TextDelta(elapsed=self.elapsed(), text=text))
        self._emit(Completed(
            elapsed=self.elapsed(), finish_reason=self.finish, text=text, metrics=self._metrics(usage=usage)
        ))

    def _fail(self, error: errors.LLMToolError) -> None:
        message = error.message
        if isinstance(error, errors.ProviderError) and retry_after_too_long(error, self.policy):
            message += (
                f" — the provider asks to wait {error.retry_after:.0f} s, longer than the "
                f"{self.policy.max_retry_after:.0f} s llmtool waits; try again later"
            )
        elif self.attempts > 1:
            message += f" (gave up after {self.attempts} attempts)"
        self._emit(Failed(
            elapsed=self.elapsed(),
            error_kind=error.kind,
            message=message,
            retryable=error.wants_retry if isinstance(error, errors.ProviderError) else error.retryable,
            status=getattr(error, "status", None),
            text=self.text,
            metrics=self._metrics(estimate=True),
        ))

    def _usage_event(self) -> Usage:
        if self.usage.output_tokens is not None:
            return Usage(
                elapsed=self.elapsed(),
                input_tokens=self.usage.input_tokens,
                cached_input_tokens=self.usage.cached_input_tokens,
                output_tokens=self.usage.output_tokens,
            )
        return Usage(elapsed=self.elapsed(), estimated=True, **self._estimated_tokens())

    def _estimated_tokens(self) -> dict[str, int]:
        request = self.run.request
        prompt = (request.system or "") + "".join(m.content for m in request.messages)
        return {"input_tokens": estimate_tokens(prompt), "output_tokens": estimate_tokens(self.text)}

    def _metrics(self, usage: Usage | None = None, estimate: bool = False) -> Metrics:
        if usage is None:
            usage = Usage(estimated=True, **self._estimated_tokens()) if estimate else Usage()
        ttft = None if self.first_text_at is None else self.first_text_at - self.started_at
        rate = None
        if usage.output_tokens and self.first_text_at is not None and self.last_text_at is not None:
            span = self.last_text_at - self.first_text_at
            if span > 0:
                rate = usage.output_tokens / span
        return Metrics(
            time_to_first_token=ttft,
            total_time=self.elapsed(),
            deltas=self.deltas,
            attempts=self.attempts,
            input_tokens=usage.input_tokens,
            cached_input_tokens=usage.cached_input_tokens,
            output_tokens=usage.output_tokens,
            usage_estimated=usage.estimated,
            tokens_per_second=rate,
            cost_usd=self.run.model.cost(usage.input_tokens, usage.cached_input_tokens, usage.output_tokens),
        )
