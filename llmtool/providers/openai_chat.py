"""OpenAI-compatible servers (Ollama, vLLM, llama.cpp, LM Studio…) through Chat Completions, streamed."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

import openai

from llmtool import errors
from llmtool.events import FinishReason
from llmtool.providers.base import (
    FinishChunk,
    ProviderChunk,
    ProviderRequest,
    ReasoningChunk,
    TextChunk,
    UsageChunk,
    sdk_timeout,
)
from llmtool.providers.openai_client import OpenAIClientAdapter
from llmtool.providers.schemas import schema_name, strict_compatible
from llmtool.providers.sdk_errors import map_sdk_errors, stream_error
from llmtool.providers.sse_lines import sse_events
from llmtool.providers.think_tags import ThinkTagSplitter

_FINISH: dict[str, FinishReason] = {"stop": "stop", "length": "max_tokens", "tool_calls": "tool_use"}


class OpenAIChatProvider(OpenAIClientAdapter):
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
        if request.reasoning_effort is not None:
            arguments["reasoning_effort"] = request.reasoning_effort
        if request.json_schema is not None and request.native_schema:
            arguments["response_format"] = {"type": "json_schema", "json_schema": {
                "name": schema_name(request.json_schema),
                "schema": request.json_schema,
                "strict": request.strict_schema and strict_compatible(request.json_schema),
            }}
        return arguments

    async def stream(self, request: ProviderRequest) -> AsyncGenerator[ProviderChunk, None]:
        finish: str | None = None
        usage = UsageChunk()
        think_tags = ThinkTagSplitter()
        with map_sdk_errors(openai, self.name, request.model):
            # The raw body, not the SDK's chunk objects: see llmtool.providers.sse_lines.
            create = self.client.chat.completions.with_streaming_response.create
            async with create(**self._arguments(request)) as response:
                async for name, data in sse_events(response.http_response):
                    if data.startswith("[DONE]"):
                        break
                    if name == "error":
                        raise stream_error(self.name, _error_body(data), "error event")
                    chunk = json.loads(data)
                    if not isinstance(chunk, dict):
                        raise errors.MalformedStreamError(f"{self.name} sent an event llmtool could not read")
                    if chunk.get("error"):
                        raise stream_error(self.name, chunk, "error event")
                    if chunk.get("usage"):
                        usage = _usage(chunk["usage"])
                    for choice in (chunk.get("choices") or [])[:1]:
                        delta = choice.get("delta") or {}
                        # Servers put reasoning beside the content under either name, or inside
                        # it as <think> tags.
                        thought = delta.get("reasoning_content") or delta.get("reasoning")
                        if isinstance(thought, str) and thought:
                            yield ReasoningChunk(thought, summary=False)
                        content = delta.get("content")
                        if isinstance(content, str) and content:
                            reasoning, text = think_tags.feed(content)
                            if reasoning or think_tags.thinking:
                                yield ReasoningChunk(reasoning, summary=False)
                            if text:
                                yield TextChunk(text)
                        if choice.get("finish_reason"):
                            finish = choice["finish_reason"]
        reasoning, text = think_tags.flush()
        if reasoning:
            yield ReasoningChunk(reasoning, summary=False)
        if text:
            yield TextChunk(text)
        # The SDK ends silently on a body cut short: no finish_reason means it never completed.
        if finish is None:
            raise errors.StreamEndedEarlyError(
                f"the stream ended early: {self.name} closed the response before it completed"
            )
        if finish == "content_filter":
            raise errors.ContentFilteredError(f"{self.name} stopped the answer: content filter")
        yield usage
        yield FinishChunk(_FINISH.get(finish, "other"))



def _error_body(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return {"message": data}


def _usage(usage: dict[str, Any]) -> UsageChunk:
    details = usage.get("prompt_tokens_details") or {}
    output_details = usage.get("completion_tokens_details") or {}
    return UsageChunk(
        input_tokens=usage.get("prompt_tokens"),
        cached_input_tokens=details.get("cached_tokens"),
        output_tokens=usage.get("completion_tokens"),
        reasoning_tokens=output_details.get("reasoning_tokens") or None,
    )
