"""The HTTP client under both SDKs: their aiohttp transport, not httpx2's default (httpcore on anyio).

    client = openai.AsyncOpenAI(..., http_client=sdk_http_client(openai))

A streamed answer is hundreds of small reads. httpcore reads each through anyio, which re-arms the
socket in the event loop (two epoll_ctl calls), opens a cancel scope for the read timeout and parses
the chunked framing in pure Python (h11): at 100 concurrent streams that was ~40 % of the app's CPU,
on the one event loop every user shares. aiohttp parses in C and keeps the socket armed; the SDKs ship
the adapter (`DefaultAioHttpClient`), which hands back ordinary httpx2 responses and maps aiohttp's
errors to httpx2's, so everything above (the SDK's request and status errors, our raw SSE reading,
`map_sdk_errors`) is unchanged. Connect and read timeouts carry over; closing a response part-way
closes its connection (a stopped run's provider sees it).
"""

from __future__ import annotations

from types import ModuleType

import httpx2


def sdk_http_client(sdk: ModuleType) -> httpx2.AsyncClient:
    """`sdk` (openai or anthropic)'s aiohttp-backed client, with the SDK's own defaults (connection
    limits, timeout, redirects)."""
    client: httpx2.AsyncClient = sdk.DefaultAioHttpClient()
    return client
