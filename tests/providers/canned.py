"""A loopback HTTP server that answers every request with the same canned bytes.

For wire shapes the scripted loopback server does not produce (fields a compatible server omits,
OpenAI's flat error event, odd headers): a real socket and real SSE bytes, nothing patched.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


def sse_response(body: str, status: str = "200 OK", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status}", "connection: close"]
    if status.startswith("200"):
        lines.append("content-type: text/event-stream")
    else:
        lines.append("content-type: application/json")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    payload = body.encode()
    lines.append(f"content-length: {len(payload)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


@asynccontextmanager
async def canned_server(response: bytes) -> AsyncIterator[tuple[str, list[bytes]]]:
    """Serve `response` to every request; yields (base URL, raw requests received)."""
    received: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")),
            0,
        )
        received.append(head + await reader.readexactly(length))
        writer.write(response)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", received
    finally:
        server.close()
        await server.wait_closed()
