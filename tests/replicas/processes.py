"""Real server processes for the tests of draining and `llmtool serve`: `python app.py`'s own serving
path (`llmtool.ui.launch.main`, uvicorn) on a free loopback port, with settings from the environment.

    with AppProcess(tmp_path, LLMTOOL_RUNS__DRAIN_SECONDS="1") as app:
        httpx.get(app.url + "/readyz")
        app.terminate()                   # SIGTERM: it drains, then exits

    apps = [AppProcess(tmp_path, **env).start() for _ in range(3)]   # side by side…
    for app in apps:
        app.ready()                                                 # …then each once it answers
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

LAUNCH = "import sys; from llmtool.ui.launch import main; sys.exit(main())"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def app_env(folder: Path, **overrides: str) -> dict[str, str]:
    """The environment of a test server: the demo model, a SQLite store in `folder`, fast store flushes;
    no provider key or config file of the machine's."""
    (folder / "llmtool.toml").touch()  # the working directory: no ./llmtool.toml of the checkout
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMTOOL_") and not k.endswith("_API_KEY")}
    return env | {
        "LLMTOOL_DEFAULT_MODEL": "demo:echo",
        "LLMTOOL_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'runs.db'}",
        "LLMTOOL_DEMO__FIRST_TOKEN_DELAY": "0",
        "LLMTOOL_STORE__FLUSH_INTERVAL": "0.1",
    } | overrides


def wait_ready(url: str, process: subprocess.Popen[Any], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url}/readyz did not answer 200 within {timeout:g} s")
        time.sleep(0.05)


class AppProcess:
    def __init__(self, folder: Path, **env: str) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / f"app-{self.port}.log"
        self.env = app_env(folder, **env)
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> AppProcess:
        return self.start().ready()

    def start(self) -> AppProcess:
        """Start the server without waiting for it (`ready` does): several servers start side by side."""
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen([sys.executable, "-c", LAUNCH, "--port", str(self.port)],
                                            env=self.env, cwd=self.folder, stdout=log, stderr=subprocess.STDOUT)
        return self

    def ready(self, timeout: float = 30.0) -> AppProcess:
        """Once `/readyz` answers 200."""
        assert self.process is not None
        wait_ready(self.url, self.process, timeout)
        return self

    def terminate(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def __exit__(self, *_: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
