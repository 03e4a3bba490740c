"""What every provider adapter takes and yields.

An adapter is translation only: `stream(request)` is an async generator that yields
`ReasoningChunk`s (a thinking model's thoughts; one with empty text when a reasoning item or thinking
block opens), `TextChunk`s, at most one `UsageChunk`, and ends with exactly one `FinishChunk`; every
failure is raised as an `llmtool.errors.ProviderError`. Retries, timing, timeouts and validation belong to the service.

Cancellation contract: the service cancels the task iterating the generator (or closes it);
the adapter's `finally` must close the upstream HTTP response, so the provider sees the connection
close at once.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Literal, Protocol

import httpx2
from pydantic import BaseModel, ConfigDict, Field, field_validator

from llmtool.events import FinishReason
from llmtool.text import repair_surrogates

ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]
REASONING_EFFORTS: tuple[ReasoningEffort, ...] = ("none", "minimal", "low", "medium", "high", "xhigh", "max")


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["user", "assistant"]
    content: str

    @field_validator("content")
    @classmethod
    def _valid_unicode(cls, content: str) -> str:
        return repair_surrogates(content)  # no provider's encoder takes a lone surrogate


class ProviderRequest(BaseModel):
    """One call to one model, with the model's own name (no `PROVIDER:` prefix)."""

    model_config = ConfigDict(frozen=True)

    model: str
    messages: list[ChatMessage]
    system: str | None = None
    temperature: float | None = None
    max_output_tokens: int | None = None
    connect_timeout: float = 10.0
    read_timeout: float = Field(
        120.0, description="SDK-level idle backstop; the service enforces the real limits."
    )
    json_schema: dict | None = Field(
        None, description="The output must be JSON of this schema (the demo provider obeys it)."
    )
    native_schema: bool = Field(
        True, description="Ask the provider for `json_schema` in its own protocol; False: the "
        "schema is already in the system prompt as an instruction.",
    )
    strict_schema: bool = Field(True, description="Strict mode where the schema allows it (OpenAI).")
    reasoning_effort: ReasoningEffort | None = None
    reasoning_summary: bool = Field(True, description="Ask for a summary of the thoughts (OpenAI).")
    thinking: Literal["adaptive", "budget"] | None = Field(
        None, description="Anthropic: how the model switches thinking on (unknown models: budget)."
    )
    effort_param: bool = Field(False, description="Anthropic: the model takes output_config.effort.")
    max_output_cap: int | None = Field(None, description="The most output the model allows, when known.")
    cache_prompt: bool = Field(False, description="Mark the system prompt and long user content cacheable.")


def sdk_timeout(request: ProviderRequest) -> httpx2.Timeout:
    """The SDK's own timeout: connect as set, read as an idle backstop behind the service's."""
    return httpx2.Timeout(request.read_timeout, connect=request.connect_timeout)


@dataclass(frozen=True, slots=True)
class TextChunk:
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningChunk:
    text: str = ""
    summary: bool = True


@dataclass(frozen=True, slots=True)
class UsageChunk:
    input_tokens: int | None = None  # all of it: fresh, read from the cache and written to it
    cached_input_tokens: int | None = None
    output_tokens: int | None = None  # reasoning included
    reasoning_tokens: int | None = None
    cache_write_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class FinishChunk:
    reason: FinishReason


ProviderChunk = ReasoningChunk | TextChunk | UsageChunk | FinishChunk


class Provider(Protocol):
    name: str

    def stream(self, request: ProviderRequest) -> AsyncGenerator[ProviderChunk, None]: ...

    async def aclose(self) -> None: ...
