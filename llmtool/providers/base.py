"""What every provider adapter takes and yields.

An adapter is translation only: `stream(request)` is an async generator that yields `TextChunk`s,
then at most one `UsageChunk`, and ends with exactly one `FinishChunk`; every failure is raised as an
`llmtool.errors.ProviderError`. Retries, timing, timeouts and validation belong to the service.

Cancellation contract: the service cancels the task iterating the generator (or closes it);
the adapter's `finally` must close the upstream HTTP response, so the provider sees the connection
close at once.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Literal, Protocol

import httpx2
from pydantic import BaseModel, ConfigDict, Field

from llmtool.events import FinishReason


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["user", "assistant"]
    content: str


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


def sdk_timeout(request: ProviderRequest) -> httpx2.Timeout:
    """The SDK's own timeout: connect as set, read as an idle backstop behind the service's."""
    return httpx2.Timeout(request.read_timeout, connect=request.connect_timeout)


@dataclass(frozen=True, slots=True)
class TextChunk:
    text: str


@dataclass(frozen=True, slots=True)
class UsageChunk:
    input_tokens: int | None = None
    cached_input_tokens: int | None = None
    output_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class FinishChunk:
    reason: FinishReason


ProviderChunk = TextChunk | UsageChunk | FinishChunk


class Provider(Protocol):
    name: str

    def stream(self, request: ProviderRequest) -> AsyncGenerator[ProviderChunk, None]: ...

    async def aclose(self) -> None: ...
