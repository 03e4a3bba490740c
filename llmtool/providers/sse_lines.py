"""Server-sent events read straight off the HTTP response, as (event name, data) pairs.

The SDKs build a model object for every event of a stream (about 60 µs each for the OpenAI SDK,
on the one event loop every user shares); the adapters need three fields of most events, so they
read the JSON themselves and let the SDK do what it is good at: the request, its retries being off,
and turning an HTTP error status into its exception.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2


async def sse_events(response: httpx2.Response) -> AsyncIterator[tuple[str | None, str]]:
    """Each complete event of the body; an event cut off by the end of the body is dropped (the
    adapter then sees no terminal event: a stream that ended early)."""
    event: str | None = None
    data: list[str] = []
    async for line in response.aiter_lines():
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
        # comments (":…"), "id" and "retry" lines mean nothing to a provider stream
