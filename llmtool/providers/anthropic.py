"""Anthropic, through the Messages API, streamed: translation of its events into provider chunks."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

import anthropic

from llmtool import errors
from llmtool.catalog import ListedModel, ThinkingMode
from llmtool.errors import InvalidRequestError
from llmtool.events import FinishReason
from llmtool.providers.base import (
    FinishChunk,
    ProviderChunk,
    ProviderRequest,
    ReasoningChunk,
    ReasoningEffort,
    TextChunk,
    UsageChunk,
    sdk_timeout,
)
from llmtool.providers.http_client import sdk_http_client
from llmtool.providers.sdk_errors import map_sdk_errors, stream_error
from llmtool.providers.sse_lines import sse_events
from llmtool.tokens import estimate_tokens

DEFAULT_MAX_TOKENS = 4096  # the Messages API requires one
# Thinking budgets (budget_tokens) for the efforts, on models switched on by a budget.
THINKING_BUDGETS: dict[ReasoningEffort, int] = {
    "minimal": 1024, "low": 2048, "medium": 8192, "high": 16384, "xhigh": 32000, "max": 63999,
}
MIN_THINKING_BUDGET = 1024
DEFAULT_OUTPUT_CAP = 64000  # the most current models write; a model's list entry may say less
OUTPUT_EFFORTS: tuple[ReasoningEffort, ...] = ("low", "medium", "high", "xhigh", "max")  # output_config.effort
# Below this many tokens Anthropic does not cache anyway; marking shorter content is noise.
CACHEABLE_TOKENS = 1024
_EPHEMERAL = {"type": "ephemeral"}
_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "max_tokens",
    "tool_use": "tool_use",
}


class AnthropicProvider:
    def __init__(self, name: str, api_key: str, base_url: str | None = None) -> None:
        self.name = name
        self.client = anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url, max_retries=0,
                                               http_client=sdk_http_client(anthropic))

    def _arguments(self, request: ProviderRequest) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "model": request.model,
            "messages": _messages(request),
            "max_tokens": request.max_output_tokens or DEFAULT_MAX_TOKENS,
            "stream": True,
            "timeout": sdk_timeout(request),
        }
        if request.system:
            if request.cache_prompt and estimate_tokens(request.system) >= CACHEABLE_TOKENS:
                arguments["system"] = [{"type": "text", "text": request.system, "cache_control": _EPHEMERAL}]
            else:
                arguments["system"] = request.system
        # No temperature: the Messages API as of SDK 2.x has no sampling parameters.
        output_config: dict[str, Any] = {}
        effort = request.reasoning_effort
        if effort == "none":
            arguments["thinking"] = {"type": "disabled"}
        elif effort is not None:
            thinking, max_tokens = thinking_config(
                effort, request.thinking, request.max_output_tokens, request.max_output_cap
            )
            arguments["thinking"] = thinking
            arguments["max_tokens"] = max_tokens
            if request.effort_param and effort in OUTPUT_EFFORTS:
                output_config["effort"] = effort
        if request.json_schema is not None and request.native_schema:
            output_config["format"] = {"type": "json_schema", "schema": request.json_schema}
        if output_config:
            arguments["output_config"] = output_config
        return arguments

    async def stream(self, request: ProviderRequest) -> AsyncGenerator[ProviderChunk, None]:
        input_tokens: int | None = None
        cached: int | None = None
        output_tokens: int | None = None
        stop_reason: str | None = None
        cache_write: int | None = None
        with map_sdk_errors(anthropic, self.name, request.model):
            # The raw body, not the SDK's event objects: see llmtool.providers.sse_lines.
            create = self.client.messages.with_streaming_response.create
            async with create(**self._arguments(request)) as response:
                async for _, data in sse_events(response.http_response):
                    event = json.loads(data)
                    kind = event.get("type") if isinstance(event, dict) else None
                    if kind == "content_block_delta":
                        delta = event.get("delta") or {}
                        delta_kind = delta.get("type")
                        if delta_kind == "text_delta":
                            yield TextChunk(delta.get("text") or "")
                        elif delta_kind == "thinking_delta":
                            yield ReasoningChunk(delta.get("thinking") or "", summary=True)
                        elif delta_kind == "signature_delta":
                            yield ReasoningChunk()  # a sign of life while it thinks
                    elif kind == "content_block_start":
                        if (event.get("content_block") or {}).get("type") in ("thinking", "redacted_thinking"):
                            yield ReasoningChunk()  # thinking began, perhaps without display
                    elif kind == "message_start":
                        # Compatible servers may omit usage: read it defensively.
                        usage = (event.get("message") or {}).get("usage") or {}
                        cached = usage.get("cache_read_input_tokens") or 0
                        created = usage.get("cache_creation_input_tokens") or 0
                        cache_write = created or None
                        fresh = usage.get("input_tokens")
                        input_tokens = None if fresh is None else fresh + cached + created
                        output_tokens = usage.get("output_tokens")
                    elif kind == "message_delta":
                        stop_reason = (event.get("delta") or {}).get("stop_reason") or stop_reason
                        output_tokens = (event.get("usage") or {}).get("output_tokens") or output_tokens
                    elif kind == "message_stop":
                        break
                    elif kind == "error" or not isinstance(event, dict):
                        raise stream_error(self.name, event, "error event")
                else:
                    raise errors.StreamEndedEarlyError(
                        f"the stream ended early: {self.name} closed the response before message_stop"
                    )
        if stop_reason == "refusal":
            raise errors.ContentFilteredError(f"{self.name} refused to continue the answer")
        yield UsageChunk(input_tokens, cached, output_tokens, cache_write_tokens=cache_write)
        yield FinishChunk(_FINISH.get(stop_reason or "", "other"))

    async def list_models(self) -> list[ListedModel]:
        with map_sdk_errors(anthropic, self.name):
            listed = [_listed(model) async for model in self.client.models.list(limit=1000, timeout=10.0)]
        return [model for model in listed if model is not None]

    async def aclose(self) -> None:
        await self.client.close()


def _messages(request: ProviderRequest) -> list[dict[str, Any]]:
    """The conversation, with cache breakpoints when caching is on: at the newest long user
    message (a pasted document: the follow-up questions about it read it from the cache), and at
    the last message once the conversation itself is long (each turn reads the ones before)."""
    messages: list[dict[str, Any]] = [m.model_dump() for m in request.messages]
    if not request.cache_prompt:
        return messages
    marks: set[int] = set()
    long_ones = [i for i, m in enumerate(messages)
                 if m["role"] == "user" and estimate_tokens(m["content"]) >= CACHEABLE_TOKENS]
    if long_ones:
        marks.add(long_ones[-1])
    if sum(estimate_tokens(m["content"]) for m in messages) >= CACHEABLE_TOKENS:
        marks.add(len(messages) - 1)
    for index in marks:
        text = messages[index]["content"]
        messages[index]["content"] = [{"type": "text", "text": text, "cache_control": _EPHEMERAL}]
    return messages


def thinking_config(
    effort: ReasoningEffort, mode: ThinkingMode | None, max_output_tokens: int | None,
    model_cap: int | None = None,
) -> tuple[dict[str, Any], int]:
    """The `thinking` parameter for an effort, and the max_tokens to send with it: thinking counts
    against max_tokens, so unless the caller set a limit there is room for the thinking the effort
    asks for plus an answer, within what the model allows. Raises InvalidRequestError when the
    output limit leaves no room to think."""
    cap = model_cap or DEFAULT_OUTPUT_CAP
    budget = THINKING_BUDGETS.get(effort, THINKING_BUDGETS["medium"])
    if max_output_tokens is None:
        max_tokens = min(budget + DEFAULT_MAX_TOKENS, cap)
        budget = min(budget, max_tokens - DEFAULT_MAX_TOKENS // 4)  # an answer still fits
    elif mode != "adaptive" and max_output_tokens <= MIN_THINKING_BUDGET:
        raise InvalidRequestError(
            f"thinking needs more than {MIN_THINKING_BUDGET} output tokens; raise max_output_tokens "
            f"(now {max_output_tokens}) or set the reasoning effort to none"
        )
    else:
        max_tokens = max_output_tokens
        budget = min(budget, max(MIN_THINKING_BUDGET, max_tokens // 2))  # half for the answer
    if mode == "adaptive":
        return {"type": "adaptive", "display": "summarized"}, max_tokens
    return {"type": "enabled", "budget_tokens": max(budget, MIN_THINKING_BUDGET), "display": "summarized"}, max_tokens


def _supported(node: Any, *path: str) -> bool:
    """Whether capabilities say `supported` at this path; a part the list left out is a no."""
    for name in path:
        node = getattr(node, name, None)
    return getattr(node, "supported", False) is True


def _listed(model: Any) -> ListedModel | None:
    """A model from Anthropic's list with the efforts its capabilities name; None if retired."""
    if getattr(model, "lifecycle", None) == "retired":
        return None
    name = str(model.id)
    display_name = getattr(model, "display_name", None)
    max_tokens = getattr(model, "max_tokens", None)
    max_output = max_tokens if isinstance(max_tokens, int) else None
    capabilities = getattr(model, "capabilities", None)
    if capabilities is None:
        return ListedModel(name=name, display_name=display_name, max_output_tokens=max_output)
    levels = [level for level in OUTPUT_EFFORTS
              if _supported(capabilities, "effort") and _supported(capabilities, "effort", level)]
    thinks = _supported(capabilities, "thinking")
    mode: ThinkingMode | None = None
    if thinks and _supported(capabilities, "thinking", "types", "adaptive"):
        mode = "adaptive"
    elif thinks and _supported(capabilities, "thinking", "types", "enabled"):
        mode = "budget"
    efforts: list[ReasoningEffort] = []
    if mode is not None or levels:
        types = getattr(getattr(capabilities, "thinking", None), "types", None)
        efforts = ["none"] if types is None or _supported(types, "disabled") else []
        efforts += levels or (["low", "medium", "high"] if mode == "budget" else [])
    return ListedModel(
        name=name,
        display_name=display_name,
        efforts=tuple(efforts),
        thinking=mode,
        effort_param=bool(levels),
        max_output_tokens=max_output,
    )
