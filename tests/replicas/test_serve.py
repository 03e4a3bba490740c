"""`llmtool serve --replicas 2` for real: two app processes (the demo model, one SQLite store, a real
Redis) behind the real nginx the command starts. Through nginx: /readyz, a run's events streamed as
they are written (no buffering), the Gradio tool's queue (join and data reach the same replica), the
affinity cookie; SIGTERM stops it all."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from httpx_sse import connect_sse

from llmtool.errors import InvalidRequestError
from llmtool.replicas.serve import AFFINITY_COOKIE, check_plan, find_nginx, nginx_config
from llmtool.settings import load_settings
from tests.replicas.conftest import words
from tests.replicas.processes import app_env, free_port, wait_ready
from tests.servers.redis import RedisServer

pytestmark = pytest.mark.skipif(find_nginx() is None, reason="nginx is not installed: run tests/servers/install.sh")


class Served:
    def __init__(self, url: str, process: subprocess.Popen[bytes], log) -> None:  # type: ignore[no-untyped-def]
        self.url, self.process, self.log = url, process, log

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("serve")
    env = app_env(folder, LLMTOOL_REDIS_URL=redis_server.new_url(), LLMTOOL_DEMO__TOKENS_PER_SECOND="40",
                  LLMTOOL_RUNS__DRAIN_SECONDS="5")
    port = free_port()
    log = folder / "serve.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "llmtool.cli", "serve", "--replicas", "2", "--port", str(port)],
                                   env=env, cwd=folder, stdout=out, stderr=subprocess.STDOUT)
    served = Served(f"http://127.0.0.1:{port}", process, log)
    try:
        wait_ready(served.url, process, timeout=60)
        yield served
    finally:
        if process.poll() is None:  # (a test failed before the last one stopped it) its replicas and nginx too
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def test_readyz_and_the_affinity_cookie_through_nginx(served: Served) -> None:
    with httpx.Client(base_url=served.url, timeout=10) as http:
        ready = http.get("/readyz")
        assert ready.status_code == 200 and ready.json() == {"status": "ready"}
        assert ready.headers["server"].startswith("nginx")
        assert AFFINITY_COOKIE in ready.cookies  # nginx gives a new client its affinity cookie
        page = http.get("/")  # the cookie came back: not set again
        assert page.status_code == 200 and "<!doctype html>" in page.text.lower()
        assert AFFINITY_COOKIE not in page.headers.get("set-cookie", "")
        assert "set-cookie" not in http.get("/api/models").headers  # /api: round robin, no cookie


def test_a_run_streams_through_nginx_as_it_is_written(served: Served) -> None:
    with httpx.Client(base_url=served.url, timeout=10) as http:
        for _ in range(2):  # round robin: the start and the stream may each reach either replica
            run = http.post("/api/runs", json={"prompt": words(80)})  # ~2 s at 40 tokens/s
            assert run.status_code == 202, run.text
            run_id = run.json()["id"]
            # With several replicas the 202 comes once the run is stored: every replica knows it at once.
            for _ in range(2):
                known = http.get(f"/api/runs/{run_id}")
                assert known.status_code == 200, known.text
            first_text = end = None
            with connect_sse(http, "GET", f"/api/runs/{run_id}/events") as source:
                if source.response.status_code != 200:
                    raise AssertionError(f"{source.response.status_code} {source.response.read()!r}")
                for sse in source.iter_sse():
                    if sse.event == "text" and first_text is None:
                        first_text = time.monotonic()
                    if sse.event in ("completed", "stopped", "failed", "interrupted"):
                        end = time.monotonic()
                        assert sse.event == "completed", sse.data
                        assert json.loads(sse.data)["text"].split() == words(80).split()
            assert first_text is not None and end is not None
            assert end - first_text > 1.0, "nginx buffered the stream: the first text came with the end"


def test_the_gradio_tool_through_nginx(served: Served) -> None:
    from gradio_client import Client

    client = Client(served.url, verbose=False, download_files=False)
    result = client.predict(prompt="hello through the balancer", api_name="/chat")
    assert "hello through the balancer" in json.dumps(result, default=str)


def test_the_generated_config_is_valid_nginx(tmp_path) -> None:
    config = tmp_path / "nginx.conf"
    config.write_text(nginx_config(tmp_path, "127.0.0.1", free_port(), [free_port(), free_port()], as_root=True))
    nginx = find_nginx()
    assert nginx is not None
    check = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(config), "-e", str(tmp_path / "error.log")],
                           capture_output=True, text=True, timeout=10)
    assert check.returncode == 0, check.stderr


def test_the_plan_needs_a_shared_store_and_warns_without_redis(tmp_path) -> None:
    memory = load_settings(database_url="sqlite+aiosqlite://")
    assert check_plan(memory, 1) == []
    with pytest.raises(InvalidRequestError, match="in-memory SQLite"):
        check_plan(memory, 2)
    in_a_file = load_settings(database_url=f"sqlite:///{tmp_path / 'runs.db'}")
    (warning,) = check_plan(in_a_file, 2)
    assert "redis_url" in warning
    assert check_plan(in_a_file.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}), 2) == []


def test_sigterm_drains_and_stops_everything(served: Served) -> None:
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(20) == 0, served.output()
    with pytest.raises(httpx.HTTPError):
        httpx.get(served.url + "/readyz", timeout=2)
