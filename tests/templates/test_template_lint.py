"""`check_prompts`: what loading cannot see — unused variables, render failures with defaults,
unknown models, datasets that do not fit their template."""

from __future__ import annotations

from pathlib import Path

from llmtool.catalog import Catalog
from llmtool.settings import Settings
from llmtool.templates.lint import check_prompts
from tests.helpers import SHIPPED_PROMPTS, write_template

GOOD = "---\nvariables:\n  who: {default: world}\n---\nHello {{ who }}\n"


def messages(directory: Path, settings: Settings | None = None) -> list[str]:
    catalog = Catalog(settings) if settings is not None else None
    return [p.message for p in check_prompts(directory, catalog).problems]


def test_shipped_prompts_are_clean(fast_settings: Settings) -> None:
    report = check_prompts(SHIPPED_PROMPTS, Catalog(fast_settings))
    assert [p.message for p in report.problems] == []
    assert len(report.templates) >= 5
    assert any(path.name == "classify.csv" for path in report.datasets)


def test_clean_directory(tmp_path: Path) -> None:
    write_template(tmp_path, "greet", GOOD)
    report = check_prompts(tmp_path)
    assert report.ok and report.templates == ["greet"]


def test_unused_variable(tmp_path: Path) -> None:
    path = write_template(tmp_path, "t", "---\nvariables:\n  a: {default: x}\n  b: {default: y}\n---\n{{ a }}\n")
    assert messages(tmp_path) == [f"{path}:4: variable 'b' is declared but never used in the prompt or system prompt"]


def test_render_failure_with_defaults(tmp_path: Path) -> None:
    path = write_template(tmp_path, "t", "---\nvariables:\n  a: {default: x}\n---\nok\n{{ a.__class__ }}\n")
    [message] = messages(tmp_path)
    assert message.startswith(f"{path}:6: unsafe template code refused by the sandbox")
    assert message.endswith("(rendering with default or sample values)")


def test_required_variables_get_sample_values(tmp_path: Path) -> None:
    write_template(tmp_path, "t", "---\nvariables:\n  n: {type: integer}\n---\n{{ n + 1 }}\n")
    assert messages(tmp_path) == []


def test_unknown_default_model(tmp_path: Path, fast_settings: Settings) -> None:
    path = write_template(tmp_path, "t", "---\nmodel: mystery:gpt-9000\n---\nHi\n")
    write_template(tmp_path, "keyless", "---\nmodel: openai:gpt-5-mini\n---\nHi\n")  # no key: fine
    write_template(tmp_path, "new", "---\nmodel: openai:gpt-9000\n---\nHi\n")  # any name: the provider decides
    [message] = messages(tmp_path, fast_settings)
    assert message.startswith(f"{path}:2: unknown provider 'mystery'")


def test_broken_file_and_bad_dataset_are_both_reported(tmp_path: Path) -> None:
    write_template(tmp_path, "greet", GOOD)
    write_template(tmp_path, "broken", "{{ x }}")
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "greet.csv").write_text("who,whom\nAda,Bob\n")
    (tmp_path / "datasets" / "orphan.jsonl").write_text('{"a": 1}\n')
    (tmp_path / "datasets" / "broken.csv").write_text("x\n1\n")  # its template's error is enough
    found = messages(tmp_path)
    assert len(found) == 3
    assert found[0].startswith(f"{tmp_path / 'broken.md'}:1: variable 'x' is used but not declared")
    assert found[1].startswith(f"{tmp_path / 'datasets' / 'greet.csv'}:1: unknown column 'whom'")
    assert found[2].startswith(f"{tmp_path / 'datasets' / 'orphan.jsonl'}: no template 'orphan'")


def test_every_choice_and_boolean_value_is_rendered(tmp_path: Path) -> None:
    path = write_template(tmp_path, "t", (
        "---\nvariables:\n"
        "  tone: {type: choice, choices: [calm, loud], default: calm}\n"
        "  short: {type: boolean, default: false}\n"
        "---\n"
        "{{ tone }}\n"
        "{% if tone == 'loud' %}{{ 1 / 0 }}{% endif %}\n"
        "{% if short %}{{ tone.x }}{% endif %}\n"
    ))
    found = messages(tmp_path)
    assert len(found) == 2
    assert found[0].startswith(f"{path}:7: the prompt cannot be rendered: ZeroDivisionError")
    assert found[0].endswith("(rendering with tone=loud)")
    assert found[1].startswith(f"{path}:8: ") and found[1].endswith("(rendering with short=true)")


def test_every_dataset_row_is_rendered(tmp_path: Path) -> None:
    write_template(tmp_path, "t", "---\nvariables:\n  n: {type: integer, default: 1}\n---\n{{ 10 // n }}\n")
    (tmp_path / "datasets").mkdir()
    dataset = tmp_path / "datasets" / "t.csv"
    dataset.write_text("id,n\none,1\nzero,0\n")
    report = check_prompts(tmp_path)
    assert report.datasets == []
    [message] = [p.message for p in report.problems]
    assert message.startswith(f"{dataset}:3: case 'zero' does not render: {tmp_path / 't.md'}:5: ")
    assert "ZeroDivisionError" in message
