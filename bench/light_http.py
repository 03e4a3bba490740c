"""A minimal HTTP/1.1 client for benchmarks: one keep-alive connection per user, as a browser holds.

    connection = await Connection.open("127.0.0.1", 8000)
    status, headers, body = await connection.request("POST", "/api/runs", json_body)
    async with connection.stream("GET", "/api/runs/ab12/events") as (status, headers, lines):
        async for line in lines:        # the body's lines (chunked transfer decoded)
            ...

Why not httpx: a benchmark's users all live in one client process on the machine that also runs the
servers, so the client's own CPU per request lands in every user's latency. httpx costs ~1 ms of CPU
per request here (and one shared pool O(connections × requests) more); 20 users asking at once then
wait ~20 ms for their own client before a byte leaves, which real users on their own machines never
do. This client writes the request bytes and parses the status line, headers and chunked framing:
tens of µs. It speaks only what the benchmarks need (no TLS, no redirects, no compression).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader = reader
        self.writer = writer
        self.host = host

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
        return cls(reader, writer, f"{host}:{port}")

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()

    def _send(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}", "Accept: */*"]
        if body is not None:
            lines += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
        elif method == "POST":
            lines.append("Content-Length: 0")
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data)

    async def _head(self) -> tuple[int, dict[str, str]]:
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    async def _chunks(self, headers: dict[str, str]) -> AsyncIterator[bytes]:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readline()  # the CRLF after the last chunk (no trailers here)
                    return
                chunk = await self.reader.readexactly(size + 2)
                yield chunk[:-2]
        elif "content-length" in headers:
            length = int(headers["content-length"])
            if length:
                yield await self.reader.readexactly(length)
        # (no body framing: a 204, or a response that ends with the connection; not used here)

    async def request(self, method: str, path: str, body: Any = None,
                      headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """Send a request (a JSON body when `body` is given) and read its whole response."""
        self._send(method, path, body, headers)
        status, response_headers = await self._head()
        content = b"".join([chunk async for chunk in self._chunks(response_headers)])
        return status, response_headers, content

    @contextlib.asynccontextmanager
    async def stream(self, method: str, path: str, headers: dict[str, str] | None = None,
                     ) -> AsyncIterator[tuple[int, dict[str, str], AsyncIterator[str]]]:
        """Send a request; yield its status, headers and the body's lines as they come. Leaving early
        closes the connection (its body was not read to the end)."""
        self._send(method, path, None, headers)
        status, response_headers = await self._head()

        finished = False

        async def lines() -> AsyncIterator[str]:
            nonlocal finished
            pending = ""
            async for chunk in self._chunks(response_headers):
                pending += chunk.decode()
                *complete, pending = pending.split("\n")
                for line in complete:
                    yield line.removesuffix("\r")
            finished = True
            if pending:
                yield pending

        try:
            yield status, response_headers, lines()
        finally:
            if not finished:  # the rest of the body is still coming: this connection cannot be reused
                await self.close()
