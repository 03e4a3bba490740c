"""The CLI: argument errors exit 2, serving logs requests, Ctrl-C exits 0 without a traceback."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2
import pytest

from llmtool.loopback.cli import main, serve

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "abc"], "not an integer"),
        (["--port", "70000"], "between 0 and 65535"),
        (["--scenario", "nope"], "invalid choice"),
        (["--tokens-per-second", "0"], "greater than 0"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_arguments_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "--tokens-per-second" in capsys.readouterr().out


def test_serve_prints_urls_and_logs_requests() -> None:
    out, err, stop = io.StringIO(), io.StringIO(), threading.Event()
    codes: list[int] = []
    thread = threading.Thread(
        target=lambda: codes.append(serve("127.0.0.1", 0, "rate_limit", stop=stop, out=out, err=err))
    )
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while "OPENAI_BASE_URL=" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        base = re.search(r"^OPENAI_BASE_URL=(\S+)$", out.getvalue(), re.M)
        assert base and re.search(r"^ANTHROPIC_BASE_URL=http://127\.0\.0\.1:\d+$", out.getvalue(), re.M)
        assert "stall_mid_stream" in out.getvalue()
        assert httpx2.post(f"{base.group(1)}/responses", json={"stream": True}).status_code == 429
        deadline = time.monotonic() + 5
        while "POST /v1/responses" not in err.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "[http_error] 429" in err.getvalue()
    finally:
        stop.set()
        thread.join(5)
    assert codes == [0]


def test_ctrl_c_exits_cleanly() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmtool.loopback", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = ""
        while not line.startswith("OPENAI_BASE_URL="):
            line = proc.stdout.readline()
            assert line, "server exited before printing its URL"
        response = httpx2.post(f"{line.split('=', 1)[1].strip()}/chat/completions", json={"stream": True})
        assert response.status_code == 200 and response.text.endswith("data: [DONE]\n\n")
        time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "Traceback" not in stderr and "POST /v1/chat/completions [normal] 200" in stderr
