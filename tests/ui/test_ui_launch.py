"""`python app.py`: flags, logins from a file and the environment, --share refused without a login."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmtool.errors import InvalidRequestError
from llmtool.settings import load_settings
from llmtool.ui.launch import load_accounts, main, parse_args, settings_from_args
from tests.accounts.support import CHEAP


def test_flags_override_the_settings(tmp_path: Path) -> None:
    config = tmp_path / "llmtool.toml"
    config.write_text('[ui]\nport = 9000\nhost = "127.0.0.1"\n')
    settings = settings_from_args(parse_args(["--config", str(config), "--host", "0.0.0.0"]))
    assert settings.ui.host == "0.0.0.0"
    assert settings.ui.port == 9000  # from the file, no flag given
    assert settings.ui.concurrency == 64 and settings.ui.max_threads == 64


def test_environment_sets_host_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMTOOL_UI__PORT", "8123")
    assert settings_from_args(parse_args([])).ui.port == 8123
    assert settings_from_args(parse_args(["--port", "8124"])).ui.port == 8124


def test_users_from_file_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    users_file = tmp_path / "users.txt"
    users_file.write_text(f"# team\nalice:{CHEAP.hash('wonder:land')}:admin\n\nbob: {CHEAP.hash('spaced')} \n")
    users_file.chmod(0o600)
    monkeypatch.setenv("LLMTOOL_USERS", f"carol:{CHEAP.hash('pw1')}\nbob:{CHEAP.hash('override')}:partner")
    accounts = load_accounts(load_settings(ui={"users_file": str(users_file)}))
    assert accounts is not None
    assert {name: entry.role for name, entry in accounts.users().items()} == {
        "alice": "admin", "bob": "partner", "carol": "member"}
    assert accounts.check("alice", "wonder:land") and accounts.check("bob", "override")
    assert not accounts.check("bob", "spaced") and not accounts.check("mallory", "pw1")


@pytest.mark.parametrize("line", ["alice", ":pw", "alice:"])
def test_a_malformed_users_line_names_its_line(tmp_path: Path, line: str) -> None:
    users_file = tmp_path / "users.txt"
    users_file.write_text(f"ok:{CHEAP.hash('pw')}\n{line}\n")
    with pytest.raises(InvalidRequestError, match=r"users\.txt line 2: expected user:hash"):
        load_accounts(load_settings(ui={"users_file": str(users_file)}))


def test_a_missing_users_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="cannot read the users file"):
        load_accounts(load_settings(ui={"users_file": str(tmp_path / "nope.txt")}))


def test_no_users_means_no_login() -> None:
    assert load_accounts(load_settings()) is None


def test_share_without_a_login_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--share"]) == 2
    err = capsys.readouterr().err
    assert "--share" in err and "login" in err and "LLMTOOL_USERS" in err


def test_a_bad_config_is_a_message_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(tmp_path / "missing.toml")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_app_py_keeps_a_module_level_demo_for_reload_mode() -> None:
    import importlib.util

    import gradio as gr

    path = Path(__file__).resolve().parents[2] / "app.py"
    spec = importlib.util.spec_from_file_location("llmtool_app_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert isinstance(module.demo, gr.Blocks)
    assert {"chat", "stop", "regenerate", "clear"} <= {
        fn.api_name for fn in module.demo.fns.values() if fn.api_name
    }


def test_the_queue_is_sized_for_an_io_bound_tool() -> None:
    from llmtool.settings import load_settings
    from llmtool.ui import build_demo
    from llmtool.ui.blocks import QUEUE_ESTIMATES_EVERY
    from llmtool.web.context import AppContext

    settings = load_settings(ui={"concurrency": 7, "max_threads": 9, "queue_size": 5})
    demo = build_demo(AppContext(settings))
    assert demo._queue.default_concurrency_limit == 7  # Gradio's default is 1
    assert demo._queue.max_thread_count == 9  # and 40
    assert demo._queue.max_size == 5
    # Places in line go out once a second, not to every waiting event at each start (O(n²) messages
    # when many ask at once: bench/bench_gradio_load.py).
    assert demo._queue.live_updates is False and demo._queue.update_intervals == QUEUE_ESTIMATES_EVERY
    streaming = [fn for fn in demo.fns.values() if fn.api_name in ("chat", "regenerate")]
    assert {fn.concurrency_limit for fn in streaming} == {7}
    assert {fn.concurrency_id for fn in streaming} == {"runs"}  # one budget for every run
    assert all(not fn.queue for fn in demo.fns.values() if fn.api_name in ("stop", "clear"))
