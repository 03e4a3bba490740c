"""`llmtool logs`: the kept runs, read from the store the app and the CLI write (like `llm logs`)."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from llmtool.cli import main
from llmtool.events import TextDelta
from llmtool.service import LLMService, RunOrigin, RunRequest
from llmtool.settings import load_settings


@pytest.fixture(autouse=True)
def fast_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMTOOL_DEMO__FIRST_TOKEN_DELAY", "0")
    monkeypatch.setenv("LLMTOOL_DEMO__TOKENS_PER_SECOND", "100000")


def chat(capsys: pytest.CaptureFixture[str], prompt: str, *options: str) -> str:
    """Run `llmtool chat` (demo:echo unless told) and return the run's id."""
    model = [] if "-m" in options else ["-m", "demo:echo"]
    assert main(["chat", *model, *options, prompt]) == 0
    err = capsys.readouterr().err
    return err.split(" · run ", 1)[1].split()[0]


def logs(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["logs", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def json_runs(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, Any]]:
    code, out, err = logs(capsys, *argv, "--json")
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines()]


def seed(*runs: tuple[dict[str, Any], RunOrigin], slow: bool = False) -> list[str]:
    """Runs made through the service (users and conversations the CLI has no options for)."""

    async def go() -> list[str]:
        demo = {"first_token_delay": 0.0, "tokens_per_second": 40 if slow else 100_000}
        service = await LLMService.open(load_settings(demo=demo))
        try:
            ids = []
            for request, origin in runs:
                run = service.start(request, origin)
                ids.append(run.id)
                await run.wait()
            return ids
        finally:
            await service.aclose()

    return asyncio.run(go())


def stopped_run(prompt: str) -> str:
    """A run stopped once some text arrived."""

    async def go() -> str:
        service = await LLMService.open(load_settings(demo={"first_token_delay": 0.0, "tokens_per_second": 40}))
        try:
            run = service.start(RunRequest(model="demo:assistant", prompt=prompt))
            async for event in run.events():
                if isinstance(event, TextDelta) and len(run.text_so_far()) > 10:
                    break
            run.cancel()
            await run.wait()
            return run.id
        finally:
            await service.aclose()

    return asyncio.run(go())


def headers(out: str) -> list[str]:
    return [line for line in out.splitlines() if " · demo:" in line]


# -- listing ---------------------------------------------------------------------------------
def test_logs_lists_chat_runs_newest_first_with_prompt_and_answer(capsys) -> None:
    first = chat(capsys, "first question")
    second = chat(capsys, "second question", "-s", "Be terse.")
    code, out, err = logs(capsys)
    assert code == 0 and err == ""
    assert out.index(second) < out.index(first)
    lines = out.splitlines()
    top = lines[0]
    assert top.startswith(f"{second} · ") and "✓ completed" in top and "· demo:echo ·" in top
    assert "TTFT" in top and "total" in top and "tok" in top
    assert datetime.now().astimezone().strftime("%Y-%m-%d ") in top  # when, in local time
    assert lines[1:3] == ["  > second question", "second question"]
    assert lines[3] == ""  # runs are separated by a blank line
    assert lines[4].startswith(f"{first} · ") and lines[5:7] == ["  > first question", "first question"]


def test_logs_shows_the_newest_n_runs_and_n_0_all(capsys) -> None:
    ids = [chat(capsys, f"question number {i}") for i in range(12)]
    assert [run["id"] for run in json_runs(capsys)] == ids[::-1][:10]  # default: the newest 10
    assert [run["id"] for run in json_runs(capsys, "-n", "3")] == ids[::-1][:3]
    assert [run["id"] for run in json_runs(capsys, "-n", "0")] == ids[::-1]
    code, out, _ = logs(capsys, "-n", "2")
    assert code == 0 and len(headers(out)) == 2


def test_logs_with_no_runs_says_so_on_stderr(capsys) -> None:
    assert logs(capsys) == (0, "", "no runs yet\n")
    assert logs(capsys, "-q", "anything") == (0, "", "no runs match\n")
    assert logs(capsys, "--json") == (0, "", "")


def test_filters_and_search_select_runs(capsys, prompts_dir: Path) -> None:
    invoice = chat(capsys, "where is the invoice from March")
    weather = chat(capsys, "what about the weather")
    assistant = chat(capsys, "tell me a story", "-m", "demo:assistant")
    ann, bob = seed(
        ({"model": "demo:echo", "prompt": "ann asks"}, RunOrigin(user="ann", source="chat", conversation_id="c1",
                                                                 position=0)),
        ({"model": "demo:echo", "prompt": "bob asks"}, RunOrigin(user="bob", source="chat", conversation_id="c2",
                                                                 position=0)),
    )
    (prompts_dir / "greet.md").write_text("---\nmodel: demo:echo\nvariables:\n  name: {}\n---\nHello {{ name }}\n")
    assert main(["run", "greet", "-v", "name=Ann"]) == 0
    capsys.readouterr()

    def ids(*argv: str) -> list[str]:
        return [run["id"] for run in json_runs(capsys, "-n", "0", *argv)]

    assert ids("-q", "INVOICE") == [invoice]  # case-insensitive whole words
    assert ids("-q", "invoice march") == [invoice]  # every word required
    assert ids("-q", "invoice weather") == []
    assert ids("-q", "invoi") == []  # whole words, not substrings
    assert ids("--model", "demo:assistant") == [assistant]
    assert ids("--user", "ann") == [ann]
    assert ids("--conversation", "c2") == [bob]
    greet = ids("--template", "greet")
    assert len(greet) == 1 and greet[0] not in (invoice, weather, assistant, ann, bob)
    assert len(ids("--status", "completed")) == 6 and ids("--status", "failed") == []
    assert ids("--model", "demo:echo", "-q", "weather") == [weather]
    code, out, _ = logs(capsys, "--template", "greet")
    assert code == 0 and "· greet@" in headers(out)[0]  # template@hash in the header


# -- how runs read -----------------------------------------------------------------------------
def test_json_lines_have_the_runs_fields(capsys) -> None:
    run_id = chat(capsys, "hello there", "-s", "Be terse.")
    (failed,) = seed(({"model": "demo:assistant", "prompt": "never in time",
                       "timeouts": {"first_token": 0.2, "total": 0.3}}, RunOrigin(user="ann", source="api")),
                     slow=True)
    newest, oldest = json_runs(capsys)
    assert newest["id"] == failed and oldest["id"] == run_id
    for key in ("id", "status", "model", "text", "created_at", "metrics", "error", "prompt", "template",
                "conversation_id", "user"):
        assert key in oldest and key in newest
    assert (oldest["status"], oldest["model"], oldest["text"], oldest["prompt"]) == (
        "completed", "demo:echo", "hello there", "hello there")
    assert oldest["error"] is None and oldest["template"] is None and oldest["user"] is None
    assert oldest["system"] == "Be terse." and oldest["source"] == "cli"
    created = datetime.fromisoformat(oldest["created_at"])
    assert created.utcoffset() is not None and created.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert abs(created.timestamp() - time.time()) < 60
    assert oldest["metrics"]["output_tokens"] == 2 and oldest["metrics"]["total_time"] >= 0
    assert newest["status"] == "failed" and newest["user"] == "ann"
    assert newest["error"]["kind"] == "deadline_exceeded" and "0.3 s" in newest["error"]["message"]
    assert datetime.fromisoformat(newest["created_at"]).tzinfo == UTC or newest["created_at"].endswith("Z")


def test_partial_runs_are_marked_in_the_list(capsys) -> None:
    stopped = stopped_run("Tell me a long story.")
    (failed,) = seed(({"model": "demo:assistant", "prompt": "never in time",
                       "timeouts": {"first_token": 0.2, "total": 0.3}}, RunOrigin()), slow=True)
    code, out, _ = logs(capsys)
    assert code == 0
    blocks = out.split(f"\n{stopped} · ")
    failed_block, stopped_block = blocks[0], blocks[1]
    assert failed_block.startswith(f"{failed} · ") and "✗ failed" in failed_block.splitlines()[0]
    assert failed_block.splitlines()[1] == "  > never in time"
    assert "(failed: " in failed_block and "0.3 s" in failed_block
    assert "■ stopped" in stopped_block.splitlines()[0]
    partial = json_runs(capsys, "--status", "stopped")[0]["text"]
    assert partial and partial in stopped_block and stopped_block.rstrip().endswith("(stopped)")


def test_show_prints_everything_about_one_run(capsys) -> None:
    run_id = chat(capsys, "show me please", "-s", "Be terse.", "-t", "0.3", "--max-tokens", "50")
    code, out, err = logs(capsys, "show", run_id)
    assert code == 0 and err == ""
    assert out.startswith(f"run {run_id}\n")
    for words in ("✓ completed", "demo:echo", "source       cli", "request", "  system\n    Be terse.",
                  "  user\n    show me please", "temperature=0.3",
                  "max_output_tokens=50", "answer\n  show me please", "validation     passed",
                  "metrics        TTFT", "events (", "started", "text ×", "usage", "validated", "completed"):
        assert words in out, words
    assert "error " not in out

    code, out, _ = logs(capsys, "show", run_id, "--json")
    assert code == 0
    document = json.loads(out)
    assert (document["id"], document["status"], document["text"]) == (run_id, "completed", "show me please")
    assert document["request"]["system"] == "Be terse." and document["request"]["temperature"] == 0.3
    kinds = [event["kind"] for event in document["events"]]
    assert kinds[0] == "started" and kinds[-1] == "completed" and "text" in kinds
    assert len(kinds) == document["event_count"]


def test_show_an_unknown_run_exits_1(capsys) -> None:
    chat(capsys, "something")
    assert logs(capsys, "show", "nosuchrun") == (1, "", "llmtool: no run with id nosuchrun\n")


def test_show_a_failed_run_has_its_error(capsys) -> None:
    (failed,) = seed(({"model": "demo:assistant", "prompt": "never in time",
                       "timeouts": {"first_token": 0.2, "total": 0.3}}, RunOrigin()), slow=True)
    code, out, _ = logs(capsys, "show", failed)
    assert code == 0 and "✗ failed" in out and "error          deadline_exceeded: " in out
    assert "answer (failed: " in out
    assert "failed  {" in out  # the terminal event, with its details


# -- export, delete, path ------------------------------------------------------------------
def test_export_writes_every_matching_run_and_says_how_many(capsys, tmp_path: Path) -> None:
    ids = [chat(capsys, f"export me {i}") for i in range(12)]
    chat(capsys, "a story", "-m", "demo:assistant")

    code, out, err = logs(capsys, "export", "-o", str(tmp_path / "echo.jsonl"), "--model", "demo:echo")
    assert code == 0 and out == "" and err == f"· 12 runs written to {tmp_path / 'echo.jsonl'}\n"
    lines = (tmp_path / "echo.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == ids[::-1]  # all of them, not just 10

    code, _, err = logs(capsys, "export", "-o", str(tmp_path / "all.csv"))
    assert code == 0 and "13 runs written" in err
    with (tmp_path / "all.csv").open(encoding="utf-8-sig", newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 13 and rows[0]["model"] == "demo:assistant" and rows[-1]["text"] == "export me 0"

    code, _, err = logs(capsys, "export", "-o", str(tmp_path / "one.jsonl"), "-q", "export 3")
    assert code == 0 and "· 1 run written" in err
    # A filter given before `export` counts too.
    code, _, err = logs(capsys, "--model", "demo:assistant", "export", "-o", str(tmp_path / "a.jsonl"))
    assert code == 0 and "· 1 run written" in err


def test_export_to_a_bad_file_exits_2(capsys, tmp_path: Path) -> None:
    chat(capsys, "x")
    code, out, err = logs(capsys, "export", "-o", str(tmp_path / "runs.txt"))
    assert (code, out) == (2, "") and "must end in .jsonl or .csv" in err and len(err.splitlines()) == 1
    code, _, err = logs(capsys, "export", "-o", str(tmp_path / "no" / "such" / "dir" / "runs.csv"))
    assert code == 2 and "cannot write" in err and "Traceback" not in err


def test_delete_a_run_and_a_conversation(capsys) -> None:
    keep = chat(capsys, "keep me")
    gone = chat(capsys, "delete me")
    turns = seed(*[({"model": "demo:echo", "prompt": f"turn {i}"},
                    RunOrigin(source="chat", conversation_id="conv-1", position=i)) for i in range(3)])

    assert logs(capsys, "delete", gone) == (0, "", f"· deleted run {gone}\n")
    assert logs(capsys, "show", gone)[0] == 1
    assert logs(capsys, "delete", gone) == (1, "", f"llmtool: no run with id {gone}\n")

    assert logs(capsys, "delete", "--conversation", "conv-1") == (
        0, "", "· deleted 3 runs of conversation conv-1\n")
    assert all(logs(capsys, "show", turn)[0] == 1 for turn in turns)
    assert logs(capsys, "delete", "--conversation", "conv-1") == (
        1, "", "llmtool: no runs in conversation conv-1\n")
    assert [run["id"] for run in json_runs(capsys)] == [keep]

    code, out, err = logs(capsys, "delete")
    assert (code, out) == (2, "") and "give a run ID or --conversation" in err


def test_path_prints_where_the_store_is(capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = logs(capsys, "path")
    expected = Path(os.environ["XDG_DATA_HOME"]) / "llmtool" / "llmtool.db"
    assert code == 0 and out == f"sqlite+aiosqlite:///{expected}\n"
    assert not expected.exists()  # `path` only says where; it opens nothing

    monkeypatch.setenv("LLMTOOL_DATABASE_URL", "postgresql://llmtool:s3cret@db.internal:5432/runs")
    code, out, _ = logs(capsys, "path")
    assert code == 0 and out == "postgresql+asyncpg://llmtool:***@db.internal:5432/runs\n"
    assert "s3cret" not in out
    monkeypatch.delenv("LLMTOOL_DATABASE_URL")

    config = tmp_path / "llmtool.toml"
    config.write_text(f'database_url = "sqlite:///{tmp_path / "mine.db"}"\n')
    assert main(["--config", str(config), "logs", "path"]) == 0
    assert capsys.readouterr().out == f"sqlite+aiosqlite:///{tmp_path / 'mine.db'}\n"


def test_logs_reads_the_store_the_config_names(capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMTOOL_DATABASE_URL", str(tmp_path / "elsewhere.db"))
    run_id = chat(capsys, "kept elsewhere")
    assert [run["id"] for run in json_runs(capsys)] == [run_id]
    monkeypatch.delenv("LLMTOOL_DATABASE_URL")
    assert json_runs(capsys) == []  # the default store has none


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "env", "words"),
    [
        (["--status", "done"], {}, "--status done: use one of running, completed, stopped, failed, interrupted"),
        (["-n", "-1"], {}, "-n -1: the number of runs cannot be negative"),
        (["-n", "ten"], {}, "-n ten: give a whole number"),
        (["-q", "  "], {}, "-q: the value is empty"),
        (["export", "-o", "x.jsonl", "--status", "nope"], {}, "--status nope"),
        ([], {"LLMTOOL_DATABASE_URL": "mysql://u:pw@localhost/db"}, "must start with sqlite+aiosqlite"),
        ([], {"LLMTOOL_DATABASE_URL": "sqlite:///:memory:"}, "needs a SQLite file"),
        (["show", "x"], {"LLMTOOL_DATABASE_URL": "NOT_A_DB"}, "file is not a database"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(capsys, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                              argv: list[str], env: dict[str, str], words: str) -> None:
    (tmp_path / "garbage.db").write_bytes(b"this is not a database, not at all" * 100)
    for name, value in env.items():
        monkeypatch.setenv(name, str(tmp_path / "garbage.db") if value == "NOT_A_DB" else value)
    code, out, err = logs(capsys, *argv)
    assert (code, out) == (2, "")
    assert words in err and err.startswith("llmtool: ") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert "pw@" not in err


def test_a_missing_config_file_exits_2(capsys) -> None:
    assert main(["--config", "/no/such.toml", "logs"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "config file not found" in err and len(err.strip().splitlines()) == 1


# -- after a crash -------------------------------------------------------------------------
def test_a_run_killed_mid_answer_shows_as_interrupted_with_its_partial_text(capsys) -> None:
    env = {**os.environ, "LLMTOOL_DEMO__TOKENS_PER_SECOND": "20", "LLMTOOL_STORE__FLUSH_INTERVAL": "0.2"}
    child = subprocess.Popen(
        [sys.executable, "-m", "llmtool.cli", "chat", "-m", "demo:assistant", "A long answer, please."],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
    )
    try:
        assert child.stderr is not None
        first = child.stderr.readline()  # "· demo:assistant · run ID"
        run_id = first.split(" · run ", 1)[1].split()[0]
        deadline = time.monotonic() + 15
        while True:  # wait until some text is stored; `logs` leaves the live process's run alone
            runs = json_runs(capsys)
            if runs and len(runs[0]["text"]) > 5:
                assert runs[0]["id"] == run_id and runs[0]["status"] == "running"
                break
            assert time.monotonic() < deadline, "no text was stored"
            time.sleep(0.1)
        code, out, _ = logs(capsys)
        assert code == 0 and "… running" in out and "(still running)" in out
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()

    (run,) = json_runs(capsys)
    assert run["id"] == run_id and run["status"] == "interrupted"
    assert len(run["text"]) > 5
    assert run["error"]["kind"] == "interrupted"
    # The partial text is the start of the answer the demo model gives that prompt.
    complete = chat(capsys, "A long answer, please.", "-m", "demo:assistant")
    full = next(r["text"] for r in json_runs(capsys) if r["id"] == complete)
    assert full.startswith(run["text"]) and len(run["text"]) < len(full)

    code, out, _ = logs(capsys, "-n", "0", "--status", "interrupted")
    assert code == 0 and "⚡ interrupted" in out and out.rstrip().endswith("(interrupted)")
    code, out, _ = logs(capsys, "show", run_id)
    assert code == 0 and "interrupted  {" in out and "error          interrupted: " in out
