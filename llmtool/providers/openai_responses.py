"""OpenAI, through the Responses API, streamed: translation of its events into provider chunks."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import openai

from llmtool import errors
from llmtool.catalog import ListedModel
from llmtool.providers.base import (
    FinishChunk,
    ProviderChunk,
    ProviderRequest,
    ReasoningChunk,
    TextChunk,
    UsageChunk,
    sdk_timeout,
)
from llmtool.providers.schemas import schema_name, strict_compatible
from llmtool.providers.sdk_errors import map_sdk_errors, stream_error


class OpenAIResponsesProvider:
    def __init__(self, name: str, api_key: str, base_url: str | None = None) -> None:
        self.name = name
        # max_retries=0: retries are the service's, or one 429 becomes nine requests.
        self.client = openai.AsyncOpenAI(api_key=api_key, base_url=base_url, max_retries=0)

    def _arguments(self, request: ProviderRequest) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "model": request.model,
            "input": [m.model_dump() for m in request.messages],
            "stream": True,
            "store": False,
            "timeout": sdk_timeout(request),
        }
        if request.system:
            arguments["instructions"] = request.system
        if request.temperature is not None:
            arguments["temperature"] = request.temperature
        if request.max_output_tokens is not None:
            arguments["max_output_tokens"] = request.max_output_tokens
        if request.reasoning_effort is not None:
            reasoning: dict[str, Any] = {"effort": request.reasoning_effort}
            if request.reasoning_effort != "none":
                reasoning["summary"] = "auto"  # without it the model thinks in silence
            arguments["reasoning"] = reasoning
        if request.json_schema is not None and request.native_schema:
            arguments["text"] = {"format": {
                "type": "json_schema",
                "name": schema_name(request.json_schema),
                "schema": request.json_schema,
                "strict": strict_compatible(request.json_schema),
            }}
        return arguments

    async def stream(self, request: ProviderRequest) -> AsyncGenerator[ProviderChunk, None]:
        summary_part = 0
        with map_sdk_errors(openai, self.name, request.model):
            stream = await self.client.responses.create(**self._arguments(request))
            try:
                async for event in stream:
                    if event.type == "response.output_text.delta":
                        yield TextChunk(event.delta)
                    elif event.type == "response.reasoning_summary_text.delta":
                        # Summary parts are paragraphs: keep them apart.
                        index = getattr(event, "summary_index", 0) or 0
                        prefix = "\n\n" if index != summary_part else ""
                        summary_part = index
                        yield ReasoningChunk(prefix + event.delta, summary=True)
                    elif event.type == "response.reasoning_text.delta":
                        yield ReasoningChunk(event.delta, summary=False)
                    elif event.type == "response.output_item.added":
                        if getattr(event.item, "type", None) == "reasoning":
                            yield ReasoningChunk()  # thinking began, perhaps silently
                    elif event.type in ("response.completed", "response.incomplete"):
                        response = event.response
                        yield _usage(response.usage)
                        yield FinishChunk(_finish_reason(self.name, response))
                        return
                    elif event.type == "response.failed":
                        error = event.response.error
                        detail = f"{error.code}: {error.message}" if error else "no reason given"
                        raise errors.ResponseFailedError(f"{self.name} reported the response failed ({detail})")
                    elif event.type == "error":  # the flat form; the SDK raises the nested one itself
                        body = {"type": event.code, "message": event.message}
                        raise stream_error(self.name, body, "error event")
                raise errors.StreamEndedEarlyError(
                    f"the stream ended early: {self.name} closed the response before it completed"
                )
            finally:
                await stream.close()

    async def list_models(self) -> list[ListedModel]:
        with map_sdk_errors(openai, self.name):
            return [ListedModel(name=model.id) async for model in self.client.models.list(timeout=10.0)]

    async def aclose(self) -> None:
        await self.client.close()


def _usage(usage: Any) -> UsageChunk:
    if usage is None:
        return UsageChunk()
    details = getattr(usage, "input_tokens_details", None)
    output_details = getattr(usage, "output_tokens_details", None)
    return UsageChunk(
        input_tokens=getattr(usage, "input_tokens", None),
        cached_input_tokens=getattr(details, "cached_tokens", None),
        output_tokens=getattr(usage, "output_tokens", None),
        reasoning_tokens=getattr(output_details, "reasoning_tokens", None) or None,
    )


def _finish_reason(provider: str, response: Any) -> Any:
    if response.status == "completed":
        return "stop"
    reason = response.incomplete_details.reason if response.incomplete_details else None
    if reason == "max_output_tokens":
        return "max_tokens"
    if reason == "content_filter":
        raise errors.ContentFilteredError(f"{provider} stopped the answer: content filter")
    return "other"
