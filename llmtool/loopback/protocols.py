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
