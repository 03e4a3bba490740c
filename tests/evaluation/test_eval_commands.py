"""`llmtool eval` through `llmtool.cli.main`: summary, results file, exit codes 0 / 1 / 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import SHIPPED_PROMPTS, write_template
from llmtool.cli import main

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
