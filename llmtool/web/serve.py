"""uvicorn serving an app in a daemon thread, for tests and benchmarks.

    with BackgroundServer(create_app(settings)) as server:   # a free port on 127.0.0.1
        httpx.get(f"{server.url}/healthz")
"""

from __future__ import annotations

import threading
import time

import uvicorn
from starlette.types import ASGIApp


class BackgroundServer:
    """uvicorn serving `app` in a daemon thread: `with BackgroundServer(app) as s: s.url`."""

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=0.5,  # type: ignore[arg-type]  # typed int, used as asyncio.wait_for's float timeout
        )
        self.server = uvicorn.Server(config)
        self.host = host
        self._thread = threading.Thread(target=self.server.run, name="llmtool-ui", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the server could not start on {self.host} (see the log above)")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the server did not start on {self.host} within {timeout:g} s")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        # Open streams (a client's heartbeat) get half a second, then the app shuts down cleanly.
        self.server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
