"""`llmtool eval` through `llmtool.cli.main`: summary, results file, exit codes 0 / 1 / 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmtool.cli import main
from tests.helpers import SHIPPED_PROMPTS, write_template

ECHO = """---
model: demo:echo
variables:
  word: {}
---
Say {{ word }}
"""


@pytest.fixture
def echo(prompts_dir: Path) -> Path:
    write_template(prompts_dir, "say", ECHO)
    return prompts_dir


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def test_all_pass_exits_0_and_writes_results(echo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dataset = write(echo.parent, "ok.jsonl", '{"word": "cat", "expect_contains": "cat"}\n{"word": "dog"}\n')
    assert main(["eval", "say", str(dataset), "-o", "results.jsonl"]) == 0
    captured = capsys.readouterr()
    assert "demo:echo" in captured.out and "2/2" in captured.out
    assert "results written to results.jsonl" in captured.err
    rows = [json.loads(line) for line in (echo.parent / "results.jsonl").read_text().splitlines()]
    assert [(r["case_id"], r["status"], r["template"]) for r in rows] == [("#1", "passed", "say"), ("#2", "passed", "say")]


def test_failures_exit_1_and_are_listed(echo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dataset = write(echo.parent, "mixed.csv", "id,word,expect_contains\ngood,cat,cat\nbad,dog,cat\n")
    assert main(["eval", "say", str(dataset), "-m", "demo:echo", "-m", "demo:assistant",
                 "--concurrency", "2", "-o", "fails.csv", "--failures-only"]) == 1
    out = capsys.readouterr().out
    assert "✗ bad (line 3) × demo:echo: failed: expected to contain 'cat'" in out
    assert "demo:assistant" in out
    written = (echo.parent / "fails.csv").read_text()
    assert "bad,3,demo:echo,failed" in written and "good," not in written


def test_shipped_example_dataset_passes_on_the_demo(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LLMTOOL_PROMPTS_DIR", str(SHIPPED_PROMPTS))
    monkeypatch.setenv("LLMTOOL_DEMO__FIRST_TOKEN_DELAY", "0")
    monkeypatch.setenv("LLMTOOL_DEMO__TOKENS_PER_SECOND", "100000")
    assert main(["eval", "classify", str(SHIPPED_PROMPTS / "datasets" / "classify.csv")]) == 0
    assert "5/5" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["eval", "nope", "cases.csv"], "llmtool: unknown template 'nope'"),
        (["eval", "say", "missing.csv"], "llmtool: missing.csv: cannot read the dataset"),
        (["eval", "say", "cases.csv", "-m", "demo:nope"], "llmtool: unknown model 'nope' for provider 'demo'"),
        (["eval", "say", "cases.csv", "-o", "out.txt"], "llmtool: --output out.txt must end in .csv or .jsonl"),
        (["eval", "say", "bad.csv"], "llmtool: bad.csv:1: unknown column 'wrod'"),
    ],
)
def test_bad_usage_exits_2(echo: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    write(echo.parent, "cases.csv", "word\ncat\n")
    write(echo.parent, "bad.csv", "word,wrod\ncat,x\n")
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith(message)


def test_concurrency_must_be_positive(echo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["eval", "say", "cases.csv", "--concurrency", "0"])
    assert exited.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    "output, message",
    [
        ("nowhere/results.csv", "llmtool: --output nowhere/results.csv: the folder nowhere does not exist"),
        ("cases.csv", "llmtool: --output cases.csv is the dataset itself"),
        ("./sub/../cases.csv", "llmtool: --output sub/../cases.csv is the dataset itself"),
        ("sub", "llmtool: --output sub must end in .csv or .jsonl"),
    ],
)
def test_bad_output_is_refused_before_running(
    echo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, output: str, message: str
) -> None:
    import llmtool.commands.evaluation as commands

    monkeypatch.setattr(commands, "run_with_service", lambda *a: pytest.fail("ran before checking --output"))
    dataset = write(echo.parent, "cases.csv", "word\ncat\n")
    (echo.parent / "sub").mkdir()
    assert main(["eval", "say", "cases.csv", "-o", output]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(message)
    assert dataset.read_text() == "word\ncat\n"


def test_unwritable_output_folder_is_refused(
    echo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import llmtool.commands.evaluation as commands

    write(echo.parent, "cases.csv", "word\ncat\n")
    monkeypatch.setattr(commands.os, "access", lambda path, mode: False)
    assert main(["eval", "say", "cases.csv", "-o", "results.csv"]) == 2
    assert "is not writable" in capsys.readouterr().err


def test_failures_only_needs_an_output_file(echo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(echo.parent, "cases.csv", "word\ncat\n")
    assert main(["eval", "say", "cases.csv", "--failures-only"]) == 2
    assert "--failures-only applies to the results file: give --output PATH" in capsys.readouterr().err


def test_ctrl_c_writes_the_results_that_finished(
    echo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import signal

    import llmtool.commands.evaluation as commands

    real = commands.run_evaluation

    async def interrupted(*args, on_progress, **kwargs):  # type: ignore[no-untyped-def]
        def progress(step):  # type: ignore[no-untyped-def]
            on_progress(step)
            if step.done == 2:
                os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does: asyncio cancels the main task

        return await real(*args, on_progress=progress, **kwargs)

    monkeypatch.setattr(commands, "run_evaluation", interrupted)
    words = [f"w{i}" for i in range(200)]
    write(echo.parent, "many.csv", "word\n" + "\n".join(words) + "\n")
    assert main(["eval", "say", "many.csv", "-c", "1", "--no-progress", "-o", "partial.jsonl"]) == 130
    rows = [json.loads(line) for line in (echo.parent / "partial.jsonl").read_text().splitlines()]
    assert 2 <= len(rows) < len(words)
    assert all(row["status"] == "passed" for row in rows)
    assert f"the {len(rows)} of {len(words)} results that finished are written to partial.jsonl" in capsys.readouterr().err


def test_shipped_invoice_schema_allows_the_nulls_its_prompt_asks_for() -> None:
    from llmtool.templates import TemplateRegistry

    template = TemplateRegistry(SHIPPED_PROMPTS).get("extract-invoice")
    nothing_stated = {
        "vendor": None, "invoice_number": None, "issue_date": None, "due_date": None,
        "currency": None, "total": None, "line_items": [{"description": "x", "quantity": None, "amount": None}],
    }
    assert template.rules.check(json.dumps(nothing_stated)) == []
    assert template.rules.check(json.dumps({**nothing_stated, "currency": "GBP", "issue_date": "2026-01-01"})) == []
    assert template.rules.check(json.dumps({**nothing_stated, "currency": "JPY"})) != []


def test_shipped_invoice_dataset_passes_on_the_demo(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LLMTOOL_PROMPTS_DIR", str(SHIPPED_PROMPTS))
    monkeypatch.setenv("LLMTOOL_DEMO__FIRST_TOKEN_DELAY", "0")
    monkeypatch.setenv("LLMTOOL_DEMO__TOKENS_PER_SECOND", "100000")
    dataset = SHIPPED_PROMPTS / "datasets" / "extract-invoice.jsonl"
    assert main(["eval", "extract-invoice", str(dataset), "--no-progress"]) == 0
    assert "2/2" in capsys.readouterr().out
