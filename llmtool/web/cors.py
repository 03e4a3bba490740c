"""Cross-origin requests carry credentials only from the origins the config names.

    app.add_middleware(CrossOrigin, allowed=settings.accounts.allowed_origins)

Gradio adds its own CORS middleware, which reflects any `http://localhost:*` origin (and its own
host) with `Access-Control-Allow-Credentials: true`: any page served on the user's machine could read
the tool's data with the user's session. This middleware sits outside everything and decides alone:
for an origin in `allowed` it answers the preflight itself and marks the answer as readable with
credentials; for any other origin every `Access-Control-*` header of the answer is removed, so the
browser keeps it from the page. Same-origin requests are untouched (browsers need no CORS for them).
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALLOWED_METHODS = "GET, POST, DELETE, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type, Idempotency-Key, Last-Event-ID"
MAX_AGE = "600"


class CrossOrigin:
    def __init__(self, app: ASGIApp, allowed: list[str] | tuple[str, ...] = ()) -> None:
        self.app = app
        self.allowed = frozenset(origin.rstrip("/") for origin in allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        allowed = origin.rstrip("/") in self.allowed
        if allowed and scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(origin, send)
            return

        async def deciding(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer = MutableHeaders(scope=message)
                for name in [key for key in answer if key.lower().startswith("access-control-")]:
                    del answer[name]
                if allowed:
                    answer["Access-Control-Allow-Origin"] = origin
                    answer["Access-Control-Allow-Credentials"] = "true"
                answer.add_vary_header("Origin")
            await send(message)

        await self.app(scope, receive, deciding)

    @staticmethod
    async def _preflight(origin: str, send: Send) -> None:
        headers = [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-allow-credentials", b"true"),
            (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
            (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
            (b"access-control-max-age", MAX_AGE.encode()),
            (b"vary", b"Origin"),
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
