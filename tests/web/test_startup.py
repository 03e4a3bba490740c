"""Start-up with a run store that cannot be used: one clear line and exit 2, for the app and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMTOOL_", "OPENAI_", "ANTHROPIC_"))}
    return {**env, **extra}


WRONG = ("mysql://u:hunter2@localhost/db", "must start with sqlite+aiosqlite:/// or postgresql+asyncpg://")
DOWN = ("postgresql+asyncpg://u:hunter2@127.0.0.1:1/db", "cannot open the database postgresql+asyncpg://u:***@127.0.0.1:1/db")
APP = ["app.py", "--port", "0"]
CLI = ["-m", "llmtool.cli", "chat", "hi"]


@pytest.mark.parametrize(("url", "reason", "command"), [(*WRONG, APP), (*WRONG, CLI), (*DOWN, CLI)])
def test_a_store_that_cannot_be_used_stops_start_up_with_one_clear_line(
    url: str, reason: str, command: list[str]
) -> None:
    done = subprocess.run([sys.executable, *command], cwd=REPO, env=_env(LLMTOOL_DATABASE_URL=url),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("llmtool: cannot keep runs: ")
    assert reason in done.stderr and "LLMTOOL_DATABASE_URL" in done.stderr
    assert "Traceback" not in done.stderr and "hunter2" not in done.stderr + done.stdout


def test_the_app_says_where_runs_are_kept(tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "app.py", "--port", "0"], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=_env(XDG_DATA_HOME=str(tmp_path)))
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.strip() == f"llmtool: runs are kept in sqlite+aiosqlite:///{tmp_path}/llmtool/llmtool.db"
        assert (tmp_path / "llmtool" / "llmtool.db").is_file()
        assert process.stdout.readline().startswith("llmtool: serving on http://127.0.0.1:")
    finally:
        process.terminate()
        process.wait(timeout=20)
