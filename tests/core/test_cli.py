"""`llmtool chat` and friends: stdout gets only the answer, exit codes say what happened."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from llmtool.cli import main
from llmtool.loopback import DEFAULT_TEXT, LoopbackServer, Scenario


@pytest.fixture
def fast_demo(monkeypatch):
    monkeypatch.setenv("LLMTOOL_DEMO__FIRST_TOKEN_DELAY", "0")
    monkeypatch.setenv("LLMTOOL_DEMO__TOKENS_PER_SECOND", "100000")


def test_chat_streams_the_answer_to_stdout_and_metrics_to_stderr(fast_demo, capsys):
    assert main(["chat", "--model", "demo:echo", "hello world"]) == 0
    out, err = capsys.readouterr()
    assert out == "hello world\n"
    assert "demo:echo" in err and "done (stop)" in err and "TTFT" in err


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["chat", "--model", "nope:x", "hi"], "unknown provider 'nope'"),
        (["chat", "--model", "openai:gpt-4.1-mini", "hi"], "needs OPENAI_API_KEY"),
        (["chat", "   "], "the prompt is empty"),
        (["chat", "--temperature", "9", "hi"], "temperature"),
        (["--config", "/no/such.toml", "chat", "hi"], "config file not found"),
    ],
)
def test_bad_usage_exits_2_with_one_clear_line(fast_demo, capsys, argv, words):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and words in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_argument_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["chat"])
    assert exited.value.code == 2


def test_a_failed_run_exits_1(monkeypatch, capsys):
    with LoopbackServer() as server:
        server.enqueue(Scenario.preset("unauthorized"))
        monkeypatch.setenv("OPENAI_API_KEY", "wrong")
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        assert main(["chat", "-m", "openai:gpt-4.1-mini", "hi"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "refused the API key (HTTP 401)" in err


def test_models_lists_only_usable_models(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "demo:assistant" in out and "openai:" not in out


def test_ctrl_c_stops_the_run_closes_upstream_and_exits_130(tmp_path):
    with LoopbackServer() as server:
        server.enqueue(Scenario(tokens_per_second=10))
        env = {**os.environ, "OPENAI_API_KEY": "k", "OPENAI_BASE_URL": server.openai_base_url}
        child = subprocess.Popen(
            [sys.executable, "-m", "llmtool.cli", "chat", "-m", "openai:gpt-4.1-mini", "hi"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
        )
        first = child.stdout.read(len("Loopback"))  # the answer has started arriving
        child.send_signal(signal.SIGINT)
        interrupted_at = time.monotonic()
        out, err = child.communicate(timeout=10)
        record = server.wait_closed(0, timeout=2)
    assert child.returncode == 130
    assert first + out.strip() == DEFAULT_TEXT[: len(first + out.strip())]  # partial text was printed
    assert "stopped" in err and "Traceback" not in err
    assert record.closed_by_client and record.closed_at - interrupted_at < 0.5
