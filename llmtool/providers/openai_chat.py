"""OpenAI-compatible servers (Ollama, vLLM, llama.cpp, LM Studio…) through Chat Completions, streamed."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import openai

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

_FINISH: dict[str, FinishReason] = {"stop": "stop", "length": "max_tokens", "tool_calls": "tool_use"}


class OpenAIChatProvider:
    def __init__(self, name: str, api_key: str, base_url: str | None = None) -> None:
        self.name = name
        self.client = openai.AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=0)

    def _arguments(self, request: ProviderRequest) -> dict[str, Any]:
        messages = [m.model_dump() for m in request.messages]
        if request.system:
            messages.insert(0, {"role": "system", "content": request.system})
        arguments: dict[str, Any] = {
            "model": request.model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "timeout": sdk_timeout(request),
        }
        if request.temperature is not None:
            arguments["temperature"] = request.temperature
        if request.max_output_tokens is not None:
            # `max_tokens`, not `max_completion_tokens`: the one every compatible server reads.
            arguments["max_tokens"] = request.max_output_tokens
        return arguments

    async def stream(self, request: ProviderRequest) -> AsyncGenerator[ProviderChunk, None]:
        finish: str | None = None
        usage = UsageChunk()
        with map_sdk_errors(openai, self.name):
            stream = await self.client.chat.completions.create(**self._arguments(request))
            try:
                async for chunk in stream:
                    if chunk.usage is not None:
                        details = getattr(chunk.usage, "prompt_tokens_details", None)
                        usage = UsageChunk(
                            input_tokens=getattr(chunk.usage, "prompt_tokens", None),
                            cached_input_tokens=getattr(details, "cached_tokens", None),
                            output_tokens=getattr(chunk.usage, "completion_tokens", None),
                        )
                    for choice in (chunk.choices or [])[:1]:
                        if choice.delta and choice.delta.content:
                            yield TextChunk(choice.delta.content)
                        if choice.finish_reason:
                            finish = choice.finish_reason
            finally:
                await stream.close()
        # The SDK ends silently on a body cut short: no finish_reason means it never completed.
        if finish is None:
            raise errors.StreamEndedEarlyError(
                f"the stream ended early: {self.name} closed the response before it completed"
            )
        if finish == "content_filter":
            raise errors.ContentFilteredError(f"{self.name} stopped the answer: content filter")
        yield usage
        yield FinishChunk(_FINISH.get(finish, "other"))

    async def aclose(self) -> None:
        await self.client.close()
