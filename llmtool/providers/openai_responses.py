"""OpenAI, through the Responses API, streamed: translation of its events into provider chunks."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

import openai

from llmtool import errors
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


class OpenAIResponsesProvider(OpenAIClientAdapter):
    def _arguments(self, request: ProviderRequest) -> dict[str, Any]:
        # The body goes as `extra_body`, already JSON: the SDK's walk of its typed parameters (aliases,
        # dates, files: none of which a body of ours has) cost ~0.6 ms of the event loop per run, a
        # quarter of a run's start (the model name alone, a union of literals, ~0.16 ms).
        return {"stream": True, "timeout": sdk_timeout(request), "extra_body": self._body(request)}

    def _body(self, request: ProviderRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.model,
            "input": [m.model_dump() for m in request.messages],
            "store": False,
        }
        if request.system:
            body["instructions"] = request.system
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_output_tokens is not None:
            body["max_output_tokens"] = request.max_output_tokens
        if request.reasoning_effort is not None:
            reasoning: dict[str, Any] = {"effort": request.reasoning_effort}
            if request.reasoning_effort != "none" and request.reasoning_summary:
                reasoning["summary"] = "auto"  # without it the model thinks in silence
            body["reasoning"] = reasoning
        if request.json_schema is not None and request.native_schema:
            body["text"] = {"format": {
                "type": "json_schema",
                "name": schema_name(request.json_schema),
                "schema": request.json_schema,
                "strict": request.strict_schema and strict_compatible(request.json_schema),
            }}
        return body

    async def stream(self, request: ProviderRequest) -> AsyncGenerator[ProviderChunk, None]:
        summary_part = 0
        with map_sdk_errors(openai, self.name, request.model):
            # The raw body, not the SDK's event objects: see llmtool.providers.sse_lines.
            async with self.client.responses.with_streaming_response.create(**self._arguments(request)) as response:
                async for _, data in sse_events(response.http_response):
                    event = json.loads(data)
                    kind = event.get("type") if isinstance(event, dict) else None
                    if kind == "response.output_text.delta":
                        yield TextChunk(event.get("delta") or "")
                    elif kind == "response.reasoning_summary_text.delta":
                        # Summary parts are paragraphs: keep them apart.
                        index = event.get("summary_index") or 0
                        prefix = "\n\n" if index != summary_part else ""
                        summary_part = index
                        yield ReasoningChunk(prefix + (event.get("delta") or ""), summary=True)
                    elif kind == "response.reasoning_text.delta":
                        yield ReasoningChunk(event.get("delta") or "", summary=False)
                    elif kind == "response.output_item.added":
                        if (event.get("item") or {}).get("type") == "reasoning":
                            yield ReasoningChunk()  # thinking began, perhaps silently
                    elif kind in ("response.completed", "response.incomplete"):
                        body = event.get("response") or {}
                        yield _usage(body.get("usage"))
                        yield FinishChunk(_finish_reason(self.name, body))
                        return
                    elif kind == "response.failed":
                        error = (event.get("response") or {}).get("error")
                        detail = f"{error.get('code')}: {error.get('message')}" if error else "no reason given"
                        raise errors.ResponseFailedError(f"{self.name} reported the response failed ({detail})")
                    elif kind == "error" or not isinstance(event, dict) or isinstance(event.get("error"), dict):
                        body = event.get("error") if isinstance(event, dict) else None
                        if not isinstance(body, dict):  # the flat form
                            body = {"type": event.get("code"), "message": event.get("message")} \
                                if isinstance(event, dict) else None
                        raise stream_error(self.name, body, "error event")
            raise errors.StreamEndedEarlyError(
                f"the stream ended early: {self.name} closed the response before it completed"
            )



def _usage(usage: Any) -> UsageChunk:
    if not isinstance(usage, dict):
        return UsageChunk()
    details = usage.get("input_tokens_details") or {}
    output_details = usage.get("output_tokens_details") or {}
    return UsageChunk(
        input_tokens=usage.get("input_tokens"),
        cached_input_tokens=details.get("cached_tokens"),
        output_tokens=usage.get("output_tokens"),
        reasoning_tokens=output_details.get("reasoning_tokens") or None,
    )


def _finish_reason(provider: str, response: dict[str, Any]) -> Any:
    if response.get("status") == "completed":
        return "stop"
    reason = (response.get("incomplete_details") or {}).get("reason")
    if reason == "max_output_tokens":
        return "max_tokens"
    if reason == "content_filter":
        raise errors.ContentFilteredError(f"{provider} stopped the answer: content filter")
    return "other"
