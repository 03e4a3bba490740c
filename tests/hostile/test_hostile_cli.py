"""No key, nor a piece of one, reaches anything the CLI prints: stdout, stderr, its log records.

The real `llmtool` command runs in a subprocess against the loopback provider, which answers with
errors whose bodies echo the request's `Authorization` header or the key itself (whole, URL-encoded,
in base64), fails its models list the same way (a log record), or echoes the key in the answer.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from llmtool import cli
from llmtool.cli import main
from llmtool.console import MaskedStream, guarded_output
from llmtool.loopback import LoopbackServer, Scenario
from llmtool.redact import Redactor

KEY = "sk-hostile-" + secrets.token_hex(16)
PROTOCOL_MODELS = {
    "responses": "openai:gpt-4.1-mini",
    "chat": "local:test-model",
    "messages": "anthropic:claude-haiku-4-5",
}


def assert_no_secret(text: str, key: str = KEY) -> None:
    """Neither the key, nor an encoded form of it, nor any 8 characters of its random part."""
    raw = key.encode()
    forms = {key, quote(key, safe=""), base64.b64encode(raw).decode().rstrip("="),
             base64.urlsafe_b64encode(raw).decode().rstrip("=")}
    for form in forms:
        assert form not in text, f"the key ({form[:4]}…) reached the output"
    secret_part = key.removeprefix("sk-hostile-")
    for start in range(len(secret_part) - 7):
        assert secret_part[start:start + 8] not in text, "a fragment of the key reached the output"


@pytest.fixture(scope="module")
def loopback() -> Iterator[LoopbackServer]:
    with LoopbackServer() as server:
        yield server


@pytest.fixture
def server(loopback: LoopbackServer) -> LoopbackServer:
    loopback.reset()
    return loopback


def cli_environment(server: LoopbackServer, tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "llmtool.toml"
    config.write_text(
        f'[endpoints.local]\nbase_url = "{server.openai_base_url}"\napi_key = "{KEY}"\nmodels = ["test-model"]\n',
        encoding="utf-8",
    )
    return {
        **os.environ,
        "OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": server.openai_base_url,
        "ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": server.anthropic_base_url,
        "LLMTOOL_CONFIG": str(config),
        "LLMTOOL_RETRY__INITIAL_DELAY": "0.01", "LLMTOOL_RETRY__MAX_DELAY": "0.01", "LLMTOOL_RETRY__JITTER": "0",
        "LLMTOOL_DEMO__FIRST_TOKEN_DELAY": "0", "NO_COLOR": "1",
    }


def llmtool(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real command, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "llmtool.cli", *args], env=env, capture_output=True,
                          text=True, timeout=60)


ECHOES = {
    "authorization header": f"Invalid header Authorization: Bearer {KEY}",
    "key in json": f'{{"api_key": "{KEY}"}}',
    "url-encoded": f"GET /v1?key={quote(KEY, safe='')} refused",
    "base64": f"token {base64.b64encode(KEY.encode()).decode()} refused",
}


@pytest.mark.parametrize("status", [401, 400, 500])
@pytest.mark.parametrize("protocol", list(PROTOCOL_MODELS))
def test_chat_prints_a_provider_error_that_echoes_the_key_masked(server, tmp_path, protocol, status) -> None:
    echoed = " · ".join(ECHOES.values())
    server.enqueue(*[Scenario(kind="http_error", status=status, error_message=echoed)] * 4)
    done = llmtool(cli_environment(server, tmp_path), "chat", "-m", PROTOCOL_MODELS[protocol], "hi")
    assert done.returncode == 1
    assert "Invalid header Authorization: Bearer ***" in done.stderr  # the error is still said
    assert_no_secret(done.stdout + done.stderr)
    assert "Traceback" not in done.stderr


def test_an_error_event_mid_stream_echoing_the_key_is_masked(server, tmp_path) -> None:
    server.enqueue(Scenario(kind="error_event", error_message=ECHOES["authorization header"]))
    done = llmtool(cli_environment(server, tmp_path), "chat", "-m", "openai:gpt-4.1-mini", "hi")
    assert done.returncode == 1 and "Bearer ***" in done.stderr
    assert_no_secret(done.stdout + done.stderr)


def test_an_answer_echoing_the_key_shows_it_masked_on_stdout(server, tmp_path) -> None:
    server.enqueue(Scenario(text=f"Your key is {KEY} and in base64 {base64.b64encode(KEY.encode()).decode()}."))
    done = llmtool(cli_environment(server, tmp_path), "chat", "-m", "openai:gpt-4.1-mini", "hi")
    assert done.returncode == 0
    assert done.stdout == "Your key is *** and in base64 ***.\n"
    assert_no_secret(done.stdout + done.stderr)


def test_the_demo_echoing_a_prompt_with_the_key_in_pieces_shows_no_fragment(server, tmp_path) -> None:
    done = llmtool(cli_environment(server, tmp_path), "chat", "-m", "demo:echo", f"remember {KEY} please")
    assert done.returncode == 0 and done.stdout == "remember *** please\n"
    assert_no_secret(done.stdout + done.stderr)


def test_a_models_list_failure_is_logged_masked(server, tmp_path) -> None:
    """`could not list the models of openai: …` is a log record: it reached stderr unmasked."""
    server.enqueue_models(*[Scenario(kind="http_error", status=500, error_message=ECHOES["authorization header"])] * 4)
    done = llmtool(cli_environment(server, tmp_path), "models")
    assert done.returncode == 0
    assert "could not list the models of openai" in done.stderr  # the log record is printed …
    assert "Bearer ***" in done.stderr  # … masked
    assert_no_secret(done.stdout + done.stderr)


def test_usage_errors_that_repeat_what_was_typed_are_masked(server, tmp_path) -> None:
    env = cli_environment(server, tmp_path)
    for args in (["chat", "--temperature", KEY, "hi"], ["chat", "--max-tokens", KEY, "hi"]):  # argparse quotes it
        done = llmtool(env, *args)
        assert done.returncode == 2 and "invalid" in done.stderr and "'***'" in done.stderr
        assert_no_secret(done.stdout + done.stderr)


def test_a_config_file_that_does_not_load_never_shows_its_key(tmp_path) -> None:
    config = tmp_path / "broken.toml"
    config.write_text(f'[endpoints.x]\napi_key = "{KEY}"\nbase_url = 42\nnot toml at all {KEY}\n', encoding="utf-8")
    env = {**os.environ, "NO_COLOR": "1"}
    done = llmtool(env, "--config", str(config), "chat", "-m", f"x:{KEY}", "hi")
    assert done.returncode == 2 and "config file" in done.stderr
    assert_no_secret(done.stdout + done.stderr)


# -- in process: the guard itself -------------------------------------------------------------
def test_log_records_of_a_command_reach_stderr_masked_with_their_traceback(monkeypatch, capsys) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)

    def command(_: object) -> int:
        try:
            raise RuntimeError(f"provider said Bearer {KEY}")
        except RuntimeError:
            logging.getLogger("llmtool.service").warning("listing failed for %s", KEY, exc_info=True)
        logging.getLogger("httpx").info(f"quiet below WARNING {KEY}")
        return 0

    monkeypatch.setattr(cli, "build_parser", _parser_running(command))
    assert main(["anything"]) == 0
    out, err = capsys.readouterr()
    assert "listing failed for ***" in err and "RuntimeError: provider said Bearer ***" in err
    assert "quiet below WARNING" not in err
    assert_no_secret(out + err)
    assert not any(isinstance(h, logging.StreamHandler) and isinstance(h.stream, MaskedStream)
                   for h in logging.getLogger().handlers)  # the handler is removed with the command


def test_an_unexpected_exception_is_printed_masked_and_exits_1(monkeypatch, capsys) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)

    def command(_: object) -> int:
        raise ValueError(f"a bug holding {KEY}")

    monkeypatch.setattr(cli, "build_parser", _parser_running(command))
    with pytest.raises(SystemExit) as exited:
        main(["anything"])
    assert exited.value.code == 1
    _, err = capsys.readouterr()
    assert "Traceback" in err and "ValueError: a bug holding ***" in err
    assert_no_secret(err)


def test_a_key_printed_in_flushed_pieces_never_shows_a_fragment(capsys) -> None:
    redactor = Redactor([KEY])
    real = sys.stdout
    stream = MaskedStream(real, redactor)
    text = f"start {KEY} middle s{KEY[:5]} end"
    seen = []
    for index in range(0, len(text), 3):
        print(text[index:index + 3], end="", file=stream, flush=True)
        seen.append(capsys.readouterr().out)
        assert_no_secret("".join(seen))
    stream.release()
    seen.append(capsys.readouterr().out)
    assert "".join(seen) == f"start *** middle s{KEY[:5]} end"


def test_the_guard_restores_the_streams(capsys) -> None:
    before = (sys.stdout, sys.stderr)
    with guarded_output(None):
        assert isinstance(sys.stdout, MaskedStream) and isinstance(sys.stderr, MaskedStream)
    assert (sys.stdout, sys.stderr) == before


def _parser_running(command):  # type: ignore[no-untyped-def]
    import argparse

    def build() -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog="llmtool")
        parser.add_argument("name")
        parser.set_defaults(handler=command)
        return parser

    return build
