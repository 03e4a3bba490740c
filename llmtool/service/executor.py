"""Drives one run: attempts with retries, the four timeouts, stop, metrics and validation.

This is the only place that turns provider chunks into user-visible events, so the rule "retry
only before the model produced anything (text or reasoning): a retry would bill it again" is
enforced here and nowhere else.

Timers of an attempt: until the model shows a sign of life (a reasoning item or thinking block
opening, a reasoning or text delta) the first-token limit; while it reasons before its first text,
the reasoning-idle limit between two signs; after its first text, the idle limit between deltas.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import aclosing

from llmtool import errors
from llmtool.catalog import ModelInfo
from llmtool.checks import check_text
from llmtool.events import (
    Completed,
    Failed,
    FinishReason,
    Interrupted,
    Metrics,
    Notice,
    ReasoningDelta,
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
    ReasoningChunk,
    TextChunk,
    UsageChunk,
)
from llmtool.providers.schemas import (
    rejects_reasoning_summary,
    rejects_strict_mode,
    rejects_structured_output,
    schema_instruction,
    strict_compatible,
)
from llmtool.redact import Redactor
from llmtool.service.retry import build_retrying, retry_after_too_long, short_reason
from llmtool.service.runs import Run
from llmtool.settings import RetryPolicy, Timeouts
from llmtool.tokens import estimate_tokens

log = logging.getLogger(__name__)


class RunExecutor:
    def __init__(self, run: Run, provider: Provider, timeouts: Timeouts, policy: RetryPolicy,
                 redactor: Redactor | None = None, *, native_schema: bool = True,
                 cache_prompt: bool = False,
                 learn_model: Callable[[], Awaitable[ModelInfo]] | None = None,
                 reasoning_summary: bool = True,
                 remember: Callable[[str], None] | None = None,
                 announced: bool = False) -> None:
        self.run = run
        self.redactor = redactor
        self.provider = provider
        self.timeouts = timeouts
        self.policy = policy
        self.loop = asyncio.get_running_loop()
        self.started_at = self.loop.time()
        self.attempts = 0
        self.released = False  # has any text reached consumers?
        self.produced = False  # has the model produced text or reasoning? then no more retries
        self.parts: list[str] = []
        self.thoughts: list[str] = []
        self.deltas = 0
        self.first_text_at: float | None = None
        self.last_text_at: float | None = None
        self.first_reasoning_at: float | None = None
        self.reasoning_summary = True
        self.native_schema = native_schema and run.request.validation.json_schema is not None
        # A key echoed in pieces is masked whole: each stream holds back a tail that could become one.
        self.text_mask = redactor.stream() if redactor is not None else None
        self.reasoning_mask = redactor.stream() if redactor is not None else None
        self.cache_prompt = cache_prompt
        self.learn_model = learn_model
        self.strict_schema = True
        self.reasoning_summary = reasoning_summary
        self._remember = remember or (lambda refusal: None)
        self.usage = UsageChunk()
        self.finish: FinishReason = "other"
        self.buffered = run.request.validation.mode == "buffer"
        self.announced = announced  # `started` is in the log already (the run waited for a slot)

    def _emit(self, event: RunEvent) -> None:
        """Into the run's log, keys masked: nothing downstream (readers, store, replay) sees one.
        (Deltas come here through the stream maskers, so a key cut across deltas is masked too.)"""
        self.run.append(self.redactor.mask_event(event) if self.redactor is not None else event)

    def _release_reasoning(self) -> None:
        """The tail the reasoning masker held back, once the thoughts are over (the answer began)."""
        if self.reasoning_mask is not None and (held := self.reasoning_mask.flush()):
            self._emit(ReasoningDelta(elapsed=self.elapsed(), text=held, summary=self.reasoning_summary))

    def _release_held(self) -> None:
        """Before the run's end: the tails the maskers held back, since nothing more can come."""
        self._release_reasoning()
        if self.text_mask is not None and (held := self.text_mask.flush()) and self.released:
            self._emit(TextDelta(elapsed=self.elapsed(), text=held))

    def elapsed(self) -> float:
        return self.loop.time() - self.started_at

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def reasoning(self) -> str:
        return "".join(self.thoughts)

    async def execute(self) -> None:
        if not self.announced:
            self._emit(Started(run_id=self.run.id, model=self.run.model.id))
        deadline_at = self.started_at + self.timeouts.total
        try:
            async with asyncio.timeout_at(deadline_at) as deadline:
                if self.learn_model is not None:
                    await self._learn_model()
                retrying = build_retrying(
                    self.policy,
                    may_retry=lambda: not self.produced,
                    announce=self._announce_retry,
                    time_left=lambda: deadline_at - self.loop.time(),
                )
                await retrying(self._attempt)
            await self._complete()
        except asyncio.CancelledError:
            self._release_held()
            if self.run.interrupting is not None:  # the process stops (draining): not the user's Stop
                self._emit(Interrupted(elapsed=self.elapsed(), message=self.run.interrupting, text=self.text,
                                       metrics=self._metrics(estimate=True)))
                return
            self._emit(Stopped(elapsed=self.elapsed(), text=self.text, reasoning=self.reasoning,
                               metrics=self._metrics(estimate=True)))
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

    async def _learn_model(self) -> None:
        """A model nobody told us about asked for a reasoning effort: what does the provider's
        list say it takes (its thinking mode too)? Refuse before sending what it cannot take."""
        assert self.learn_model is not None
        try:
            model = await self.learn_model()
        except Exception:  # no list to learn from: the provider decides
            log.warning("could not look %s up in its provider's list", self.run.model.id, exc_info=True)
            return
        self.run.model = model
        model.check_effort(self.run.request.reasoning_effort)

    # -- one attempt --------------------------------------------------------------------------
    def _provider_request(self) -> ProviderRequest:
        request = self.run.request
        schema = request.validation.json_schema
        system = request.system
        if schema is not None and not self.native_schema:
            system = f"{system}\n\n{schema_instruction(schema)}" if system else schema_instruction(schema)
        return ProviderRequest(
            model=self.run.model.name,
            messages=request.messages,
            system=system,
            temperature=request.temperature,
            max_output_tokens=request.max_output_tokens,
            connect_timeout=self.timeouts.connect,
            # The SDK's read timeout is only a backstop: ours below fire first.
            read_timeout=max(self.timeouts.first_token, self.timeouts.idle, self.timeouts.reasoning_idle) + 5.0,
            json_schema=schema,
            native_schema=self.native_schema,
            strict_schema=self.strict_schema,
            reasoning_summary=self.reasoning_summary,
            reasoning_effort=request.reasoning_effort,
            thinking=self.run.model.thinking,
            effort_param=self.run.model.effort_param,
            max_output_cap=self.run.model.max_output_tokens,
            cache_prompt=self.cache_prompt,
        )

    async def _attempt(self) -> None:
        self.attempts += 1
        while True:
            try:
                await self._stream_once()
                return
            except errors.RequestRejectedError as error:
                # A refused request costs nothing: ask again at once without what was refused.
                if self.produced or not self._ask_less(error):
                    raise

    def _ask_less(self, error: errors.RequestRejectedError) -> bool:
        """Drop the one optional thing the provider refused (each at most once): strict schema
        mode, then the native schema request, or reasoning summaries. False: nothing to drop."""
        schema = self.run.request.validation.json_schema
        if self.native_schema and schema is not None and rejects_structured_output(error):
            if self.strict_schema and strict_compatible(schema) and rejects_strict_mode(error):
                self.strict_schema = False  # the schema as it is, just not strictly enforced
                return True
            self.native_schema = False
            self._remember(f"schema:{self.run.model.id}")
            self._emit(Notice(
                elapsed=self.elapsed(),
                message=f"{self.run.model.id} cannot be asked for structured output "
                f"({error.message}); the JSON Schema is asked for by instruction and checked after the answer",
            ))
            return True
        if self.reasoning_summary and self.run.request.reasoning_effort and rejects_reasoning_summary(error):
            self.reasoning_summary = False
            self._remember(f"summary:{self.run.model.provider}")
            self._emit(Notice(
                elapsed=self.elapsed(),
                message=f"{self.provider.name} does not give reasoning summaries here ({error.message}); "
                "the model thinks without showing its thoughts",
            ))
            return True
        return False

    async def _stream_once(self) -> None:
        # Retries happen only while nothing was produced, so each attempt starts from scratch.
        self.parts, self.thoughts, self.deltas, self.usage = [], [], 0, UsageChunk()
        self.first_text_at = self.first_reasoning_at = None
        attempt_started = self.loop.time()
        stream = self.provider.stream(self._provider_request())
        try:
            # One timer for the attempt: first the time-to-first-token limit, then, after each
            # sign of life, pushed forward by the reasoning-idle or the idle limit.
            async with asyncio.timeout_at(attempt_started + self.timeouts.first_token) as limit:
                async with aclosing(stream):
                    async for chunk in stream:
                        if isinstance(chunk, TextChunk):
                            if chunk.text:
                                self._on_text(chunk.text)
                                limit.reschedule(self.loop.time() + self.timeouts.idle)
                        elif isinstance(chunk, ReasoningChunk):
                            self._on_reasoning(chunk)
                            # Thinking between pieces of the answer is a sign of life too.
                            wait = self.timeouts.reasoning_idle if self.first_text_at is None else self.timeouts.idle
                            limit.reschedule(self.loop.time() + wait)
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
            if self.parts:
                raise errors.IdleTimeoutError(
                    f"{self.provider.name} stopped sending for more than {self.timeouts.idle:g} s"
                ) from None
            if self.first_reasoning_at is not None:
                raise errors.ReasoningIdleTimeoutError(
                    f"{self.provider.name} was thinking but sent nothing for more than "
                    f"{self.timeouts.reasoning_idle:g} s"
                ) from None
            raise errors.FirstTokenTimeoutError(
                f"{self.provider.name} sent nothing within {self.timeouts.first_token:g} s"
            ) from None

    def _on_reasoning(self, chunk: ReasoningChunk) -> None:
        now = self.loop.time()
        first = self.first_reasoning_at is None
        if first:
            self.first_reasoning_at = now
        self.produced = True
        self.reasoning_summary = chunk.summary
        if chunk.text:
            self.thoughts.append(chunk.text)
        shown = self.reasoning_mask.feed(chunk.text) if self.reasoning_mask is not None else chunk.text
        if shown or first:
            self._emit(ReasoningDelta(elapsed=now - self.started_at, text=shown, summary=chunk.summary))

    def _on_text(self, text: str) -> None:
        now = self.loop.time()
        if self.first_text_at is None:
            self.first_text_at = now
            self._release_reasoning()
        self.last_text_at = now
        self.parts.append(text)
        self.deltas += 1
        self.produced = True
        if not self.buffered:
            self.released = True
            shown = self.text_mask.feed(text) if self.text_mask is not None else text
            if shown:
                self._emit(TextDelta(elapsed=now - self.started_at, text=shown))

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
    async def _complete(self) -> None:
        self._release_held()
        text = self.text
        usage = self._usage_event()
        self._emit(usage)
        rules = self.run.request.validation
        # off the event loop when it could take long; a check past its time limit is a problem named
        problems = await check_text(rules, text) if rules.rule_count else []
        self._emit(Validated(
            elapsed=self.elapsed(), passed=not problems, problems=problems, rules_checked=rules.rule_count
        ))
        if self.buffered and not problems:
            self._emit(TextDelta(elapsed=self.elapsed(), text=text))
        self._emit(Completed(
            elapsed=self.elapsed(), finish_reason=self.finish, text=text, reasoning=self.reasoning,
            metrics=self._metrics(usage=usage),
        ))

    def _fail(self, error: errors.LLMToolError) -> None:
        self._release_held()
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
            reasoning=self.reasoning,
            metrics=self._metrics(estimate=True),
        ))

    def _usage_event(self) -> Usage:
        if self.usage.output_tokens is not None:
            return Usage(
                elapsed=self.elapsed(),
                input_tokens=self.usage.input_tokens,
                cached_input_tokens=self.usage.cached_input_tokens,
                output_tokens=self.usage.output_tokens,
                reasoning_tokens=self.usage.reasoning_tokens,
                cache_write_tokens=self.usage.cache_write_tokens,
            )
        return Usage(elapsed=self.elapsed(), estimated=True, **self._estimated_tokens())

    def _estimated_tokens(self) -> dict[str, int | None]:
        request = self.run.request
        prompt = (request.system or "") + "".join(m.content for m in request.messages)
        reasoning = estimate_tokens(self.reasoning) if self.thoughts else None
        return {
            "input_tokens": estimate_tokens(prompt),
            "output_tokens": estimate_tokens(self.text) + (reasoning or 0),
            "reasoning_tokens": reasoning,
        }

    def _metrics(self, usage: Usage | None = None, estimate: bool = False) -> Metrics:
        if usage is None:
            usage = Usage(estimated=True, **self._estimated_tokens()) if estimate else Usage()
        ttft = None if self.first_text_at is None else self.first_text_at - self.started_at
        thinking = None
        if self.first_reasoning_at is not None:
            thinking = (self.first_text_at or self.loop.time()) - self.first_reasoning_at
        rate = None
        reasoning_tokens = usage.reasoning_tokens
        if reasoning_tokens is None and self.thoughts:  # counted in the output but not reported apart
            reasoning_tokens = estimate_tokens(self.reasoning)
        answer_tokens = (usage.output_tokens or 0) - (reasoning_tokens or 0)
        if answer_tokens > 0 and self.first_text_at is not None and self.last_text_at is not None:
            span = self.last_text_at - self.first_text_at
            if span > 0:
                rate = answer_tokens / span
        return Metrics(
            time_to_first_token=ttft,
            total_time=self.elapsed(),
            deltas=self.deltas,
            attempts=self.attempts,
            input_tokens=usage.input_tokens,
            cached_input_tokens=usage.cached_input_tokens,
            output_tokens=usage.output_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            usage_estimated=usage.estimated,
            tokens_per_second=rate,
            cost_usd=self.run.model.cost(
                usage.input_tokens, usage.cached_input_tokens, usage.output_tokens, usage.cache_write_tokens
            ),
            thinking_time=thinking,
        )
