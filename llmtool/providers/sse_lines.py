"""Server-sent events read straight off the HTTP response, as (event name, data) pairs.

The SDKs build a model object for every event of a stream (about 60 µs each for the OpenAI SDK,
on the one event loop every user shares); the adapters need three fields of most events, so they
read the JSON themselves and let the SDK do what it is good at: the request, its retries being off,
and turning an HTTP error status into its exception.

Lines end at CR, LF or CRLF only (the SSE rule): `str.splitlines()` would also cut at U+2028,
U+0085 and others, which JSON carries unescaped inside a string.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx2

_LINE_END = re.compile(rb"\r\n|\r|\n")


async def _lines(response: httpx2.Response) -> AsyncIterator[str]:
    pending = b""
    first = True
    async for chunk in response.aiter_bytes():
        pending += chunk
        # A CR at the end may be the first half of a CRLF cut across two chunks: keep it back.
        held = pending.endswith(b"\r")
        parts = _LINE_END.split(pending[:-1] if held else pending)
        pending = parts.pop() + (b"\r" if held else b"")
        for line in parts:
            text = line.decode("utf-8", "replace")
            if first:
                text, first = text.removeprefix("\ufeff"), False  # a BOM before the first event
            yield text
    if pending.rstrip(b"\r"):
        yield pending.rstrip(b"\r").decode("utf-8", "replace").removeprefix("\ufeff" if first else "")


async def sse_events(response: httpx2.Response) -> AsyncIterator[tuple[str | None, str]]:
    """Each complete event of the body; an event cut off by the end of the body is dropped (the
    adapter then sees no terminal event: a stream that ended early)."""
    event: str | None = None
    data: list[str] = []
    async for line in _lines(response):
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = None, []
            continue
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "error" and value:
            # llama.cpp's form of a mid-stream error: a line of its own.
            yield "error", value
        # comments (":…"), "id" and "retry" lines mean nothing to a provider stream
