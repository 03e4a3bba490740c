"""Anthropic, through the Messages API, streamed: translation of its events into provider chunks."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import anthropic

from llmtool import errors
from llmtool.events import FinishReason
from llmtool.providers.base import (
    FinishChunk,
    ProviderChunk,
    ProviderRequest,
    TextChunk,
    UsageChunk,
    sdk_timeout,
)
from llmtool.providers.sdk_errors import map_sdk_errors

DEFAULT_MAX_TOKENS = 4096  # the Messages API requires one
_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "max_tokens",
    "tool_use": "tool_use",
}


class AnthropicProvider:
    def __init__(self, name: str, api_key: str, base_url: str | None = None) -> None:
        self.name = name
        self.client = anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url, max_retries=0)

    def _arguments(self, request: ProviderRequest) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "model": request.model,
            "messages": [m.model_dump() for m in request.messages],
            "max_tokens": request.max_output_tokens or DEFAULT_MAX_TOKENS,
            "stream": True,
            "timeout": sdk_timeout(request),
        }
        if request.system:
            arguments["system"] = request.system
        # No temperature: the Messages API as of SDK 2.x has no sampling parameters.
        return arguments

    async def stream(self, request: ProviderRequest) -> AsyncGenerator[ProviderChunk, None]:
        input_tokens: int | None = None
        cached: int | None = None
        output_tokens: int | None = None
        stop_reason: str | None = None
        with map_sdk_errors(anthropic, self.name):
            stream = await self.client.messages.create(**self._arguments(request))
            try:
                async for event in stream:
                    if event.type == "content_block_delta":
                        if event.delta.type == "text_delta":
                            yield TextChunk(event.delta.text)
                    elif event.type == "message_start":
                        # Compatible servers may omit usage: read it defensively.
                        usage = getattr(event.message, "usage", None)
                        cached = getattr(usage, "cache_read_input_tokens", None) or 0
                        created = getattr(usage, "cache_creation_input_tokens", None) or 0
                        fresh = getattr(usage, "input_tokens", None)
                        input_tokens = None if fresh is None else fresh + cached + created
                        output_tokens = getattr(usage, "output_tokens", None)
                    elif event.type == "message_delta":
                        stop_reason = getattr(event.delta, "stop_reason", None) or stop_reason
                        output_tokens = getattr(event.usage, "output_tokens", None) or output_tokens
                    elif event.type == "message_stop":
                        break
                else:
                    raise errors.StreamEndedEarlyError(
                        f"the stream ended early: {self.name} closed the response before message_stop"
                    )
            finally:
                await stream.close()
        if stop_reason == "refusal":
            raise errors.ContentFilteredError(f"{self.name} refused to continue the answer")
        yield UsageChunk(input_tokens, cached, output_tokens)
        yield FinishChunk(_FINISH.get(stop_reason or "", "other"))

    async def aclose(self) -> None:
        await self.client.close()
