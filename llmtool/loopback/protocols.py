"""The three emulated endpoints and what differs between them outside the stream itself."""

from __future__ import annotations

import uuid
from typing import Any, Literal

Protocol = Literal["responses", "chat", "messages"]

ROUTES: dict[str, Protocol] = {
    "/v1/responses": "responses",
    "/v1/chat/completions": "chat",
    "/v1/messages": "messages",
}

# Request fields that cap the answer length, first present wins.
_MAX_TOKEN_FIELDS: dict[Protocol, tuple[str, ...]] = {
    "responses": ("max_output_tokens",),
    "chat": ("max_completion_tokens", "max_tokens"),
    "messages": ("max_tokens",),
}


def max_tokens(protocol: Protocol, body: Any) -> int | None:
    """The request's output-token cap, or None when absent or not an integer."""
    if not isinstance(body, dict):
        return None
    for field in _MAX_TOKEN_FIELDS[protocol]:
        value = body.get(field)
        if isinstance(value, int) and not isinstance(value, bool):
            return max(value, 0)
    return None


def request_id_header(protocol: Protocol | None) -> str:
    """Anthropic names it ``request-id``; OpenAI ``x-request-id``."""
    return "request-id" if protocol == "messages" else "x-request-id"


def new_request_id() -> str:
    return f"req_{uuid.uuid4().hex[:24]}"


# Where each protocol's request asks for structured output: (outer field, inner field).
_SCHEMA_FIELDS: dict[str, tuple[str, str | None]] = {
    "responses": ("text", "format"),
    "chat": ("response_format", None),
    "messages": ("output_config", "format"),
}


def requested_schema(protocol: str | None, body: Any) -> tuple[str, dict[str, Any]] | None:
    """``(field, schema)`` when the request asks for a JSON schema in its protocol's own field.

    ``field`` is the dotted request field (``text.format``, ``response_format``,
    ``output_config.format``). ``schema`` is that field's ``json_schema`` format object, except for
    Chat where it is the nested ``json_schema`` object (``{"name", "schema", "strict"}``).
    None for other protocols and for formats that are not ``json_schema`` (e.g. ``json_object``).
    """
    fields = _SCHEMA_FIELDS.get(protocol or "")
    if fields is None or not isinstance(body, dict):
        return None
    outer, inner = fields
    value = body.get(outer)
    if inner is not None:
        value = value.get(inner) if isinstance(value, dict) else None
    if not isinstance(value, dict) or value.get("type") != "json_schema":
        return None
    field = f"{outer}.{inner}" if inner else outer
    if protocol == "chat":
        nested = value.get("json_schema")
        return field, nested if isinstance(nested, dict) else {}
    return field, value
