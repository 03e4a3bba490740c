"""A real Redis server for the tests: Debian's redis-server on a free loopback port, in a temp dir.

    with RedisServer() as server:
        url = server.url(db=3)      # redis://127.0.0.1:PORT/3
        server.restart()            # the same port, an empty server (nothing is saved)

Nothing is written to disk (`--save ""`, no append-only file); it runs fine as root (CI is root).
A test takes a database of its own (`new_url`) or flushes what it used.
"""

from __future__ import annotations

import itertools
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

INSTALL_HINT = "run tests/servers/install.sh (installs Debian's redis-server), then the tests again"
DATABASES = 16  # redis-server's default `databases`


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(f"redis-server is not installed: {INSTALL_HINT}")
        self.binary = binary
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="llmtool-redis-"))
        self.process: subprocess.Popen[bytes] | None = None
        self._databases = itertools.cycle(range(1, DATABASES))  # 0 is left for ad-hoc use

    def start(self) -> RedisServer:
        log = open(self.root / "server.log", "ab")  # noqa: SIM115  (closed with the process)
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root),
             "--save", "", "--appendonly", "no", "--protected-mode", "no", "--databases", str(DATABASES),
             "--loglevel", "warning"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 15
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                output = (self.root / "server.log").read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"redis-server did not start:\n{output}")
            time.sleep(0.02)
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def new_url(self) -> str:
        """A database of its own for one test (emptied first): tests of a session do not see each other's keys."""
        db = next(self._databases)
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as connection:
            connection.sendall(f"SELECT {db}\r\nFLUSHDB\r\n".encode())
            answer = b""
            while answer.count(b"\r\n") < 2:
                answer += connection.recv(64)
        return self.url(db)

    def stop(self, *, keep_dir: bool = False) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not keep_dir:
            shutil.rmtree(self.root, ignore_errors=True)

    def restart(self) -> None:
        """Stop and start again on the same port: an empty server, as after a crash without persistence."""
        self.stop(keep_dir=True)
        self.start()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
