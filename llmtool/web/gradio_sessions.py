"""Gradio's session ids, event ids, upload ids and files belong to the login that first used them.

    app = SessionBinding(gradio_app, user_of)     # inside the login gate: every request has a login

Gradio identifies a browser tab by a `session_hash` the page makes up, and hands out event ids, upload
ids and file paths; none of them is tied to a login. Whoever learns another user's session id could
read that tab's stream (`/queue/data`), stop its runs (`/cancel`), or download its exports
(`/file=…`). This middleware remembers, per id, the login that first presented it (or that a response
handed it to) and answers 404 — as if it did not exist — to anyone else, before Gradio sees the
request. Ids are remembered for `MAX_AGE` seconds after their last use, at most `MAX_IDS` of them
(oldest forgotten first: a forgotten id can be claimed again, by its owner's next request at the
latest, since a tab's heartbeat and queue use it every few seconds).

Where ids appear (Gradio 6, under `/gradio_api`): `session_hash` in the query (`/queue/data`) or the
JSON body (`/queue/join`, `/cancel`, `/run/…`, `/api/…`, `/reset`), in the path (`/heartbeat/{id}`,
`/stream/{id}/…`); `event_id` answered by `/call/{api}` and asked for at `/call/{api}/{event_id}`;
`upload_id` in the query of `/upload` and `/upload_progress`; file paths in the answers of `/upload`
and in the messages of `/queue/data` and `/call/…`, asked for at `/file={path}` and `/file/{path}`.
"""

from __future__ import annotations

import json
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, unquote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_AGE = 24 * 3600.0
MAX_IDS = 200_000
MAX_JSON_BODY = 4 << 20  # bytes of a JSON request read to find its session_hash (ApiGuard, inside, refuses past 2 MB)
_PREFIX = "/gradio_api"
_PATH_VALUE = re.compile(rb'"path":\s*"((?:[^"\\]|\\.)*)"')
_NOT_FOUND = b'{"detail":"Not Found"}'

UserOf = Callable[[Scope], Awaitable[str | None]]
Privileged = Callable[[str], bool]


class Owners:
    """id → (login, last use), bounded and ageing."""

    def __init__(self, max_ids: int = MAX_IDS, max_age: float = MAX_AGE) -> None:
        self.max_ids, self.max_age = max_ids, max_age
        self._owners: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def claim(self, key: str, user: str) -> bool:
        """Whether `user` may use `key`: it is theirs, or nobody's yet (then it becomes theirs)."""
        now = time.monotonic()
        known = self._owners.get(key)
        if known is not None and known[0] != user and now - known[1] < self.max_age:
            return False
        self._owners[key] = (user, now)
        self._owners.move_to_end(key)
        while len(self._owners) > self.max_ids:
            self._owners.popitem(last=False)
        return True

    def owner(self, key: str) -> str | None:
        known = self._owners.get(key)
        if known is None or time.monotonic() - known[1] >= self.max_age:
            return None
        return known[0]

    def __len__(self) -> int:
        return len(self._owners)


class SessionBinding:
    """ASGI middleware for the mounted Gradio app (see the module's docstring). `user_of(scope)` is the
    request's login (None: not logged in; the request passes untouched — the login gate outside
    refuses it); `sees_everything(user)` lets admins fetch any file."""

    def __init__(self, app: ASGIApp, user_of: UserOf, sees_everything: Privileged | None = None) -> None:
        self.app = app
        self.user_of = user_of
        self.sees_everything = sees_everything or (lambda _user: False)
        self.sessions = Owners()  # session hashes, event ids and upload ids
        self.files = Owners()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(_PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        user = await self.user_of(scope)
        if user is None:
            await self.app(scope, receive, send)
            return
        path = scope["path"][len(_PREFIX):]
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        ids = [value for name in ("session_hash", "upload_id") for value in query.get(name, [])]
        ids += _ids_in_path(path)
        if scope["method"] == "POST" and _has_json_body(scope) and not path.startswith("/upload"):
            body, receive = await _read_body(receive)
            if body is None:  # too big to be one of Gradio's own requests: not ours to judge, but not read
                await _answer(send, 413, b'{"detail":"The request is too large."}')
                return
            ids += _ids_in_body(body)
            files = _paths_in(body)  # files a handler is asked to read: another user's upload is not yours
        else:
            files = []
        wanted = _file_asked(path)
        if wanted is not None and not self.sees_everything(user):
            files.append(wanted)
        if any(self.files.owner(name) not in (None, user) for name in files) or \
                not all(self.sessions.claim(key, user) for key in ids):
            await _answer(send, 404, _NOT_FOUND)
            return
        if path.startswith("/upload") and scope["method"] == "POST":
            send = self._learning(send, user, uploads=True)
        elif path.startswith(("/queue/data", "/call/", "/run/", "/api/")):
            send = self._learning(send, user, event_ids=path.startswith("/call/"))
        await self.app(scope, receive, send)

    def _learning(self, send: Send, user: str, *, event_ids: bool = False, uploads: bool = False) -> Send:
        """`send`, noting the event ids and file paths the answer hands to `user`."""
        carry = b""

        async def noting(message: Message) -> None:
            nonlocal carry
            if message["type"] == "http.response.body":
                data = carry + message.get("body", b"")
                more = message.get("more_body", False)
                if uploads:  # a JSON list of the uploaded files' paths, in one answer
                    carry = data[-MAX_JSON_BODY:] if more else b""
                    if not more:
                        for name in _string_list(data):
                            self.files.claim(name, user)
                else:
                    cut = data.rfind(b"\n") + 1 if more else len(data)
                    complete, carry = data[:cut], data[cut:][-MAX_JSON_BODY:]
                    for name in _paths_in(complete):
                        self.files.claim(name, user)
                    if event_ids and b'"event_id"' in complete:
                        for key in _event_ids(complete):
                            self.sessions.claim(key, user)
            await send(message)

        return noting


def _ids_in_path(path: str) -> list[str]:
    parts = path.strip("/").split("/")
    if len(parts) >= 2 and parts[0] in ("heartbeat", "stream"):
        return [unquote(parts[1])]
    if len(parts) >= 3 and parts[0] == "call":
        return [unquote(parts[-1])] if parts[1] != "v2" or len(parts) >= 4 else []
    return []


def _ids_in_body(body: bytes) -> list[str]:
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return []  # Gradio answers it; nothing of anyone's is named
    if not isinstance(value, dict):
        return []
    return [v for k in ("session_hash", "event_id") if isinstance(v := value.get(k), str) and v]


def _file_asked(path: str) -> str | None:
    if path.startswith("/file="):
        return unquote(path[len("/file="):])
    if path.startswith("/file/"):
        return unquote(path[len("/file/"):])
    return None


def _paths_in(data: bytes) -> list[str]:
    """The `"path": "…"` values in JSON text (Gradio's file data), found without parsing it."""
    if b'"path"' not in data:
        return []
    return [_json_string(found.group(1)) for found in _PATH_VALUE.finditer(data)]


def _string_list(data: bytes) -> list[str]:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return []
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _event_ids(data: bytes) -> list[str]:
    found = []
    for match in re.finditer(rb'"event_id":\s*"([^"\\]{1,200})"', data):
        found.append(match.group(1).decode("utf-8", "replace"))
    return found


def _json_string(raw: bytes) -> str:
    try:
        value = json.loads(b'"' + raw + b'"')
    except ValueError:
        return raw.decode("utf-8", "replace")
    return value if isinstance(value, str) else ""


def _has_json_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return b"json" in value.lower()
    return False


async def _read_body(receive: Receive) -> tuple[bytes | None, Receive]:
    """The whole body (None past MAX_JSON_BODY) and a `receive` that hands it to the app again."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None, receive
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_JSON_BODY:
            return None, receive
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    replayed = False

    async def again() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, again


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
