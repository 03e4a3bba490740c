"""``GET /v1/models``: the configurable model list, in OpenAI's or Anthropic's shape (pure functions)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

Effort = Literal["low", "medium", "high", "xhigh", "max"]
ThinkingType = Literal["enabled", "adaptive"]
Provider = Literal["openai", "anthropic"]

EFFORTS: tuple[Effort, ...] = ("low", "medium", "high", "xhigh", "max")
_LINES = ("haiku", "sonnet", "opus")


class ModelSpec(BaseModel):
    """One listed model. Strings are accepted wherever a list of specs is (``ModelSpec(id=...)``).

    ``provider`` picks the listing it appears in; None means Anthropic for ids starting with
    ``claude``, OpenAI otherwise. ``efforts``, ``thinking``, ``structured_outputs`` and the token
    limits only show in the Anthropic shape (as ``capabilities``); ``owned_by`` only in OpenAI's.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    provider: Provider | None = None
    display_name: str | None = None  # None: derived from the id ("claude-opus-4-5" -> "Claude Opus 4.5")
    created: int = Field(default=1735689600, ge=0)  # Unix seconds (default 2025-01-01)
    owned_by: str = "system"
    efforts: tuple[Effort, ...] = ()  # supported Anthropic effort levels; empty = effort unsupported
    thinking: tuple[ThinkingType, ...] = ()  # accepted thinking types; empty = no extended thinking
    structured_outputs: bool = True
    max_input_tokens: int = Field(default=200_000, ge=1)
    max_tokens: int = Field(default=64_000, ge=1)

    @property
    def listed_by(self) -> Provider:
        if self.provider is not None:
            return self.provider
        return "anthropic" if self.id.startswith("claude") else "openai"


DEFAULT_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(id="gpt-5.1", created=1762992000),
    ModelSpec(id="gpt-4.1-mini", created=1744316542),
    ModelSpec(id="claude-opus-4-5", created=1763942400, efforts=("low", "medium", "high"), thinking=("enabled",)),
    ModelSpec(id="claude-sonnet-4-5", created=1759104000, thinking=("enabled",)),
    ModelSpec(id="claude-opus-4-7", created=1767225600, efforts=EFFORTS, thinking=("adaptive",), max_tokens=128_000),
)

_SPECS = TypeAdapter(list[ModelSpec | str])


def model_specs(models: Iterable[ModelSpec | str | dict[str, Any]]) -> tuple[ModelSpec, ...]:
    """Validate a list of specs, ids or spec dicts (``ValidationError`` on bad input)."""
    items = _SPECS.validate_python(list(models))
    return tuple(ModelSpec(id=item) if isinstance(item, str) else item for item in items)


def _display_name(model_id: str) -> str:
    words: list[str] = []
    for piece in model_id.split("-"):
        if piece.isdigit() and len(piece) <= 2 and words and re.fullmatch(r"[\d.]+", words[-1]):
            words[-1] += f".{piece}"
        else:
            words.append(piece.capitalize() if piece.isalpha() else piece)
    return " ".join(words)


def _rfc3339(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _support(value: bool) -> dict[str, bool]:
    return {"supported": value}


def anthropic_capabilities(spec: ModelSpec) -> dict[str, Any]:
    """Every key of ``anthropic.types.ModelCapabilities``, as the API always sends them all."""
    thinks = bool(spec.thinking)
    return {
        "batch": _support(True),
        "citations": _support(True),
        "code_execution": _support(True),
        "context_management": {
            "supported": True,
            "clear_thinking_20251015": _support(thinks),
            "clear_tool_uses_20250919": _support(True),
            "compact_20260112": _support(False),
        },
        "effort": {"supported": bool(spec.efforts), **{level: _support(level in spec.efforts) for level in EFFORTS}},
        "image_input": _support(True),
        "pdf_input": _support(True),
        "server_tools": {"supported": True, "code_execution": _support(True), "web_search": _support(True)},
        "structured_outputs": _support(spec.structured_outputs),
        "thinking": {
            "supported": thinks,
            "types": {
                "adaptive": _support("adaptive" in spec.thinking),
                "between_tools": _support(False),
                "disabled": _support(True),
                "enabled": _support("enabled" in spec.thinking),
            },
        },
    }


def anthropic_model(spec: ModelSpec) -> dict[str, Any]:
    """One ``anthropic.types.ModelInfo``."""
    line = next((name for name in _LINES if name in spec.id.split("-")), None)
    return {
        "type": "model",
        "id": spec.id,
        "display_name": spec.display_name or _display_name(spec.id),
        "created_at": _rfc3339(spec.created),
        "capabilities": anthropic_capabilities(spec),
        "max_input_tokens": spec.max_input_tokens,
        "max_tokens": spec.max_tokens,
        "lifecycle": "active",
        "deprecated_at": None,
        "retires_at": None,
        "line": line,
    }


def openai_model(spec: ModelSpec) -> dict[str, Any]:
    """One ``openai.types.Model``."""
    return {"id": spec.id, "object": "model", "created": spec.created, "owned_by": spec.owned_by}


def listed(specs: Sequence[ModelSpec], provider: Provider) -> list[ModelSpec]:
    return [spec for spec in specs if spec.listed_by == provider]


def find(specs: Sequence[ModelSpec], provider: Provider, model_id: str) -> ModelSpec | None:
    return next((spec for spec in listed(specs, provider) if spec.id == model_id), None)


def openai_list(specs: Sequence[ModelSpec]) -> dict[str, Any]:
    return {"object": "list", "data": [openai_model(spec) for spec in listed(specs, "openai")]}


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def anthropic_list(specs: Sequence[ModelSpec], query: dict[str, str]) -> dict[str, Any]:
    """A page of Anthropic's cursor pagination: ``limit`` (1-1000, default 20), ``after_id`` or
    ``before_id``; an unknown cursor id is ignored."""
    models = listed(specs, "anthropic")
    ids = [spec.id for spec in models]
    limit = min(max(_int(query.get("limit"), 20), 1), 1000)
    before, after = query.get("before_id"), query.get("after_id")
    if before in ids:
        end = ids.index(before)
        page, has_more = models[max(end - limit, 0) : end], end > limit
    else:
        start = ids.index(after) + 1 if after in ids else 0
        page, has_more = models[start : start + limit], start + limit < len(models)
    return {
        "data": [anthropic_model(spec) for spec in page],
        "has_more": has_more,
        "first_id": page[0].id if page else None,
        "last_id": page[-1].id if page else None,
    }
