"""The loopback server: an asyncio TCP server in a daemon thread, routing, control API, recording."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote

from pydantic import TypeAdapter, ValidationError

from .error_bodies import error_body
from .http11 import BadRequest, Connection, Request, read_request
from .models import DEFAULT_MODELS, ModelSpec, model_specs
from .playback import play, play_models
from .protocols import ROUTES, Protocol, new_request_id, request_id_header
from .records import RecordedRequest, RequestLog
from .scenarios import PRESETS, Scenario

_PREFIX = re.compile(r"^/scenario/([^/]+)(/.*)?$")
_MODELS = re.compile(r"^/v1/models(?:/(.+))?$")
_SCENARIO_LIST = TypeAdapter(list[Scenario | str])


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class LoopbackServer:
    """Fake OpenAI (Responses, Chat Completions) and Anthropic (Messages) streaming endpoints.

    Scenario per request: the next ``enqueue``d one, else the preset named by a
    ``/scenario/<preset>/`` URL prefix, else ``default``.

    ``GET /v1/models`` (and ``/v1/models/<id>``) lists ``models`` (default ``DEFAULT_MODELS``) in
    Anthropic's shape when the request has an ``anthropic-version`` header, else OpenAI's; each
    shape lists only its provider's models. A listing takes its scenario from its own queue
    (``enqueue_models``), else the URL prefix, else it answers the list: a test scripting answers
    with ``enqueue`` is not disturbed by a client that lists models first. It is recorded with
    ``protocol="models"``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        default: Scenario | None = None,
        tokens_per_second: float | None = None,
        on_request: Callable[[RecordedRequest], None] | None = None,
        models: Iterable[ModelSpec | str] | None = None,
    ):
        self.host = host
        self.models = DEFAULT_MODELS if models is None else models
        self.default = default or Scenario()
        self.tokens_per_second = tokens_per_second
        self._requested_port = port
        self._port: int | None = None
        self._log = RequestLog(on_closed=on_request)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._startup_error: BaseException | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> LoopbackServer:
        """Bind and serve in a background thread; returns once the port is bound."""
        if self._thread is not None:
            raise RuntimeError("LoopbackServer already started")
        ready = threading.Event()
        self._startup_error = None
        self._thread = threading.Thread(target=self._run, args=(ready,), name="loopback-server", daemon=True)
        self._thread.start()
        ready.wait()
        if self._startup_error is not None:
            self._thread.join()
            self._thread = None
            raise self._startup_error
        return self

    def stop(self) -> None:
        """Close the listener, abort open connections and join the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._loop = self._thread = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            server = loop.run_until_complete(asyncio.start_server(self._handle, self.host, self._requested_port))
        except BaseException as exc:  # e.g. port in use: re-raised by start()
            self._startup_error = exc
            loop.close()
            ready.set()
            return
        self._port = server.sockets[0].getsockname()[1]
        self._loop = loop
        ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    # -- public helpers ----------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("LoopbackServer not started")
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    def preset_url(self, preset: str) -> str:
        """Base URL selecting ``preset``; append ``/v1`` for OpenAI clients."""
        return f"{self.url}/scenario/{preset}"

    @property
    def models(self) -> tuple[ModelSpec, ...]:
        """What ``GET /v1/models`` lists; assign a list of ``ModelSpec``s or ids to change it."""
        return self._models

    @models.setter
    def models(self, models: Iterable[ModelSpec | str]) -> None:
        self._models = model_specs(models)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Snapshots of the records so far, in arrival order."""
        return self._log.snapshot()

    def enqueue(self, *scenarios: Scenario | str) -> None:
        """Script the next requests, one scenario each (preset names allowed)."""
        self._log.enqueue([Scenario.preset(s) if isinstance(s, str) else s for s in scenarios])

    def enqueue_models(self, *scenarios: Scenario | str) -> None:
        """Script the next model listings (``GET /v1/models``), one scenario each."""
        self._log.enqueue([Scenario.preset(s) if isinstance(s, str) else s for s in scenarios], listing=True)

    def reset(self) -> None:
        """Forget all records and queued scenarios."""
        self._log.reset()

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        if not self._log.wait(lambda records: len(records) >= count, timeout):
            raise TimeoutError(f"fewer than {count} requests within {timeout}s")
        return self.requests

    def wait_closed(self, index: int, timeout: float = 5.0) -> RecordedRequest:
        """Block until request #index's connection is closed; its record."""

        def closed(records: list[RecordedRequest]) -> bool:
            return len(records) > index and records[index].closed_at is not None

        if not self._log.wait(closed, timeout):
            raise TimeoutError(f"request #{index} not closed within {timeout}s")
        return self.requests[index]

    # -- connection handling -----------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Connection(reader, writer)
        record: RecordedRequest | None = None
        finished = True
        try:
            try:
                request = await read_request(reader)
            except BadRequest as exc:
                await conn.send_json(400, error_body(None, 400, message=str(exc)))
                return
            if request is None:
                return
            conn.start_watch()
            if request.path.startswith("/_loopback/"):
                await self._control(conn, request)
                return
            record = self._log.add(
                method=request.method,
                path=request.path,
                target=request.target,
                headers=request.headers,
                body=request.json(),
                received_at=time.monotonic(),
            )
            finished = await self._serve(conn, request, record)
        except asyncio.CancelledError:
            writer.transport.abort()
            raise
        except Exception:
            traceback.print_exc(file=sys.stderr)
            writer.transport.abort()
        finally:
            await conn.close()
            if record is not None:
                by_client = not finished and conn.client_gone
                closed_at = conn.gone_at if by_client and conn.gone_at is not None else time.monotonic()
                self._log.close(record, closed_at, by_client=by_client)

    async def _serve(self, conn: Connection, request: Request, record: RecordedRequest) -> bool:
        match = _PREFIX.match(request.path)
        preset, path = (match.group(1), match.group(2) or "/") if match else (None, request.path)
        protocol = ROUTES.get(path)
        models = _MODELS.match(path)
        anthropic_listing = models is not None and "anthropic-version" in request.headers
        # The error body shape: Anthropic's for /v1/messages and Anthropic model listings.
        shape: Protocol | None = "messages" if anthropic_listing else protocol
        request_id = new_request_id()
        self._log.update(record, path=path, protocol="models" if models is not None else protocol, preset=preset)
        rid = {request_id_header(shape): request_id}

        async def refuse(status: int, message: str) -> bool:
            self._log.update(record, status=status)
            body = error_body(shape, status, message=message, request_id=request_id)
            return await conn.send_json(status, body, rid)

        if preset is not None and preset not in PRESETS:
            return await refuse(404, f"Unknown scenario preset {preset!r}. Valid presets: {', '.join(PRESETS)}.")
        if protocol is None and models is None:
            return await refuse(404, f"Invalid URL ({request.method} {path})")
        method = "GET" if models is not None else "POST"
        if request.method != method:
            return await refuse(405, f"Method {request.method} not allowed for {path}; use {method}.")

        if models is not None:
            scenario = self._log.next_scenario(listing=True) or (Scenario.preset(preset) if preset else Scenario())
        else:
            scenario = self._log.next_scenario() or (Scenario.preset(preset) if preset else self.default)
        self._log.update(record, scenario_kind=scenario.kind)

        def report(**fields: Any) -> None:
            self._log.update(record, **fields)

        if models is not None:
            query = dict(parse_qsl(request.target.partition("?")[2]))
            return await play_models(
                conn,
                anthropic=anthropic_listing,
                model_id=unquote(models.group(1)) if models.group(1) else None,
                query=query,
                specs=self.models,
                scenario=scenario,
                request_id=request_id,
                report=report,
            )
        assert protocol is not None
        return await play(
            conn,
            protocol=protocol,
            body=record.body,
            scenario=scenario,
            tokens_per_second=self.tokens_per_second,
            request_id=request_id,
            report=report,
        )

    async def _control(self, conn: Connection, request: Request) -> None:
        route = (request.method, request.path)
        if route == ("GET", "/_loopback/requests"):
            await conn.send_json(200, _dumps([r.model_dump(mode="json") for r in self.requests]))
        elif route == ("GET", "/_loopback/presets"):
            await conn.send_json(200, _dumps({k: v.model_dump(mode="json") for k, v in PRESETS.items()}))
        elif route == ("GET", "/_loopback/models"):
            await conn.send_json(200, _dumps([m.model_dump(mode="json") for m in self.models]))
        elif route == ("POST", "/_loopback/models"):
            try:
                payload = json.loads(request.body or b"null")
                self.models = payload if isinstance(payload, list) else [payload]
            except (ValueError, ValidationError) as exc:
                await conn.send_json(400, error_body(None, 400, message=str(exc)))
                return
            await conn.send_json(200, _dumps([m.model_dump(mode="json") for m in self.models]))
        elif route == ("POST", "/_loopback/reset"):
            self.reset()
            await conn.send_json(200, _dumps({"ok": True}))
        elif route == ("POST", "/_loopback/enqueue"):
            try:
                payload = json.loads(request.body or b"null")
                items = _SCENARIO_LIST.validate_python(payload if isinstance(payload, list) else [payload])
                self.enqueue(*items)
            except (ValueError, ValidationError, KeyError) as exc:
                message = exc.args[0] if isinstance(exc, KeyError) else str(exc)
                await conn.send_json(400, error_body(None, 400, message=message))
                return
            await conn.send_json(200, _dumps({"queued": self._log.queued()}))
        else:
            await conn.send_json(404, error_body(None, 404, message=f"Invalid URL ({request.method} {request.path})"))
