"""`llmtool run`, `llmtool prompts list|check` through `llmtool.cli.main`: exit codes and messages."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from llmtool.cli import main
from llmtool.commands.templates import parse_assignments
from llmtool.templates import TemplateRegistry
from tests.helpers import SHIPPED_PROMPTS, write_template

GREET = """---
description: Greet someone
model: demo:echo
variables:
  who: {description: Who to greet}
  punctuation: {type: choice, choices: ["!", "."], default: "!"}
---
Hello {{ who }}{{ punctuation }}
"""


def test_prompts_check_passes_on_the_shipped_prompts(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LLMTOOL_PROMPTS_DIR", str(SHIPPED_PROMPTS))
    assert main(["prompts", "check"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "0 problems" in captured.err


@pytest.mark.parametrize("name", [t.name for t in TemplateRegistry(SHIPPED_PROMPTS).list()])
def test_every_shipped_template_runs_on_the_demo_without_variables(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LLMTOOL_PROMPTS_DIR", str(SHIPPED_PROMPTS))
    monkeypatch.setenv("LLMTOOL_DEMO__FIRST_TOKEN_DELAY", "0")
    monkeypatch.setenv("LLMTOOL_DEMO__TOKENS_PER_SECOND", "100000")
    assert main(["run", name, "--model", "demo:assistant"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip()
    assert f"template {name} @ " in captured.err


def test_shipped_templates_are_useful() -> None:
    templates = TemplateRegistry(SHIPPED_PROMPTS).list()
    assert len(templates) >= 5
    for template in templates:
        assert template.description, template.name
        assert all(not spec.is_required for spec in template.variables.values()), template.name
    assert any(t.rules.mode == "buffer" and t.rules.json_schema for t in templates)


def test_prompts_check_fails_on_problems(prompts_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_template(prompts_dir, "greet", GREET)
    broken = write_template(prompts_dir, "broken", "---\ncolour: red\n---\nHi\n")
    assert main(["prompts", "check"]) == 1
    captured = capsys.readouterr()
    assert captured.out == f"{broken}:2: colour: unknown key (allowed: {_meta_keys()})\n"
    assert "1 templates ok, 0 datasets ok, 1 problems" in captured.err


def _meta_keys() -> str:
    from llmtool.templates import TemplateMeta

    return ", ".join(TemplateMeta.model_fields)


def test_prompts_list_shows_good_and_broken(prompts_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_template(prompts_dir, "greet", GREET)
    write_template(prompts_dir, "broken", "{{ x }}")
    assert main(["prompts", "list"]) == 0
    out = capsys.readouterr().out
    assert "greet   demo:echo" in out and "Greet someone" in out
    assert "who* (text), punctuation (choice)" in out
    assert "broken  BROKEN  " in out and "variable 'x' is used but not declared" in out


def test_run_streams_the_rendered_template(prompts_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_template(prompts_dir, "greet", GREET)
    assert main(["run", "greet", "-v", "who=Ada", "-v", "punctuation=."]) == 0
    assert capsys.readouterr().out == "Hello Ada.\n"


def test_run_reads_a_value_from_a_file(prompts_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_template(prompts_dir, "greet", GREET)
    (prompts_dir.parent / "name.txt").write_text("Grace Hopper")
    assert main(["run", "greet", "-v", "who=@name.txt"]) == 0
    assert capsys.readouterr().out == "Hello Grace Hopper!\n"


def test_run_dry_run_prints_the_prompt(prompts_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_template(prompts_dir, "greet", GREET)
    assert main(["run", "greet", "-v", "who=Ada", "--dry-run"]) == 0
    assert capsys.readouterr().out == "Hello Ada!\n"


def test_run_sees_an_edit_without_a_restart(prompts_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_template(prompts_dir, "greet", GREET)
    assert main(["run", "greet", "-v", "who=Ada"]) == 0
    path.write_text(GREET.replace("Hello", "Bonjour"))
    assert main(["run", "greet", "-v", "who=Ada"]) == 0
    assert capsys.readouterr().out == "Hello Ada!\nBonjour Ada!\n"


def test_run_fails_validation_with_exit_1(prompts_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_template(prompts_dir, "greet", GREET.replace("---\nHello", "validation: {max_length: 3}\n---\nHello"))
    assert main(["run", "greet", "-v", "who=Ada"]) == 1
    assert "validation failed: too long" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "nope"], "llmtool: unknown template 'nope' in "),
        (["run", "greet", "-v", "who"], "llmtool: -v 'who': write NAME=VALUE"),
        (["run", "greet", "-v", "who=a", "-v", "who=b"], "llmtool: -v who: given twice"),
        (["run", "greet", "-v", "whom=Ada"], "greet.md:4: unknown variable 'whom': template 'greet' declares who, punctuation"),
        (["run", "greet"], "greet.md:5: missing required variable 'who' (Who to greet)"),
        (["run", "greet", "-v", "who=a", "-v", "punctuation=?"], "variable 'punctuation' must be one of !, ."),
        (["run", "greet", "-v", "who=@missing.txt"], "llmtool: -v who=@missing.txt: cannot read the file"),
        (["run", "greet", "-v", "who=a", "--model", "nope:x"], "llmtool: unknown provider 'nope'"),
        (["run", "broken"], "broken.md:1: variable 'x' is used but not declared"),
    ],
)
def test_run_bad_usage_exits_2_with_one_line(
    prompts_dir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    write_template(prompts_dir, "greet", GREET)
    write_template(prompts_dir, "broken", "{{ x }}")
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith("llmtool: ") and message in line


def test_parse_assignments() -> None:
    assert parse_assignments(["a=1", "b=x=y", "c=", "d=@@literal", "e=@-"], stdin=io.StringIO("piped")) == {
        "a": "1", "b": "x=y", "c": "", "d": "@literal", "e": "piped",
    }
