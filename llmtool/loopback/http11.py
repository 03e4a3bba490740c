"""Just enough HTTP/1.1 over asyncio streams: request parsing, response heads, chunked bodies,
prompt detection of a client that goes away, and TCP resets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import time
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

_MAX_HEAD = 64 * 1024
_EXTRA_REASONS = {529: "Overloaded"}


class BadRequest(Exception):
    """The bytes received are not an HTTP/1.1 request we can parse."""


@dataclass
class Request:
    method: str
    target: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The parsed JSON body, or None when empty or not JSON."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";")[0].strip(), 16)
        except ValueError:
            raise BadRequest("bad chunk size") from None
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readexactly(2)


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """Read one request; None when the client closed before sending a complete one."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    except asyncio.LimitOverrunError:
        raise BadRequest("request head too large") from None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(f"bad request line {lines[0]!r}")
    method, target, _version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise BadRequest(f"bad header line {line!r}")
        name = name.strip().lower()
        value = value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    try:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await _read_chunked(reader)
        else:
            length = int(headers.get("content-length", "0"))
            body = await reader.readexactly(length) if length > 0 else b""
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    except ValueError:
        raise BadRequest("bad content-length") from None
    return Request(method.upper(), target, target.split("?", 1)[0], headers, body)


def reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return _EXTRA_REASONS.get(status, "Unknown")


def response_head(status: int, headers: dict[str, str]) -> bytes:
    """Status line and headers; always ``connection: close`` (one request per connection)."""
    base = {"date": formatdate(usegmt=True), "server": "llmtool-loopback"}
    merged = {**base, **{k.lower(): v for k, v in headers.items()}, "connection": "close"}
    lines = [f"HTTP/1.1 {status} {reason_phrase(status)}"]
    lines += [f"{name}: {value}" for name, value in merged.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"


class Connection:
    """One accepted socket. While a response is being written, a concurrent read watches for the
    client going away, so a stalled writer notices a close at once rather than on its next write."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.gone_at: float | None = None
        self._gone = asyncio.Event()
        self._watch: asyncio.Task[None] | None = None

    @property
    def client_gone(self) -> bool:
        return self._gone.is_set()

    def _mark_gone(self) -> None:
        if not self._gone.is_set():
            self.gone_at = time.monotonic()
            self._gone.set()

    async def _watch_for_close(self) -> None:
        try:
            while await self.reader.read(65536):
                pass  # the client has nothing more to say on a connection: close exchange
        except (ConnectionError, OSError):
            pass
        self._mark_gone()

    def start_watch(self) -> None:
        if self._watch is None:
            self._watch = asyncio.create_task(self._watch_for_close())

    def _stop_watch(self) -> None:
        if self._watch is not None:
            self._watch.cancel()

    async def send(self, data: bytes) -> bool:
        """Write and drain; False (and nothing written) once the client is gone."""
        if self._gone.is_set():
            return False
        try:
            self.writer.write(data)
            await self.writer.drain()
        except (ConnectionError, OSError):
            self._mark_gone()
            return False
        return not self._gone.is_set()

    async def send_chunk(self, data: bytes) -> bool:
        return await self.send(chunk(data))

    async def pause(self, seconds: float) -> bool:
        """Sleep unless the client leaves first; True when it is still connected."""
        if seconds > 0 and not self._gone.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._gone.wait(), seconds)
        return not self._gone.is_set()

    def reset(self) -> None:
        """Abort with an RST: SO_LINGER (on, 0 s) makes close() discard buffers and reset."""
        self._stop_watch()
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    async def close(self) -> None:
        """Flush what is buffered and close with a FIN."""
        self._stop_watch()
        if self.writer.transport.is_closing():
            return
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()

    async def send_json(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> bool:
        """A complete response with a ``content-length`` JSON body."""
        head = response_head(
            status,
            {"content-type": "application/json", **(headers or {}), "content-length": str(len(body))},
        )
        return await self.send(head + body)
