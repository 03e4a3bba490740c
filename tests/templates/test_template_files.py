"""Loading template files: good ones load, bad ones fail with the file, the line and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmtool.templates import TemplateError, content_hash, load_template
from tests.helpers import write_template

VALID_CASES = {
    "no front matter": ("Just a prompt.\n", {}, "Just a prompt."),
    "empty front matter": ("---\n---\nHi\n", {}, "Hi"),
    "variable with default": (
        "---\nvariables:\n  who: {default: world}\n---\nHello {{ who }}!\n", {}, "Hello world!"
    ),
    "value overrides default": (
        "---\nvariables:\n  who: {default: world}\n---\nHello {{ who }}!\n", {"who": "Ada"}, "Hello Ada!"
    ),
    "few-shot loop and condition": (
        "---\nvariables:\n  formal: {type: boolean, default: false}\n---\n"
        "{% set examples = [('hi', 'hello'), ('bye', 'goodbye')] %}\n"
        "{% for short, long in examples %}\n{{ short }} -> {{ long }}\n{% endfor %}\n"
        "{% if formal %}Be formal.{% else %}Be casual.{% endif %}\n",
        {"formal": "yes"},
        "hi -> hello\nbye -> goodbye\nBe formal.",
    ),
    "typed values from strings": (
        "---\nvariables:\n  n: {type: integer}\n  x: {type: number}\n  b: {type: boolean}\n"
        "  c: {type: choice, choices: [a, b]}\n---\n{{ n + 1 }} {{ x * 2 }} {{ b }} {{ c }}\n",
        {"n": "41", "x": "1.25", "b": "off", "c": "b"},
        "42 2.5 False b",
    ),
    "optional variable renders empty": (
        "---\nvariables:\n  note: {required: false}\n---\nA{{ note }}B\n", {}, "AB"
    ),
    "CRLF line endings": ("---\r\nvariables:\r\n  a: {default: x}\r\n---\r\n{{ a }}\r\n", {}, "x"),
}


@pytest.mark.parametrize("text, values, expected", VALID_CASES.values(), ids=VALID_CASES.keys())
def test_valid_templates_render(tmp_path: Path, text: str, values: dict, expected: str) -> None:
    template = load_template(write_template(tmp_path, "t", text))
    assert template.render(values).prompt == expected


# (file text, expected line, fragment of the message)
INVALID_CASES = {
    "unknown top-level key": ("---\ndescripton: x\n---\nHi\n", 2, "descripton: unknown key"),
    "unknown variable key": (
        "---\nvariables:\n  tone:\n    type: choice\n    chioces: [a]\n---\n{{ tone }}\n",
        5, "variables.tone.chioces: unknown key",
    ),
    "bad YAML": ("---\ndescription: x\nvariables: [a\n---\nHi\n", 4, "flow sequence on line 3"),
    "front matter never closed": ("---\ndescription: x\nHi\n", 1, "never closed"),
    "front matter not a mapping": ("---\n- a\n- b\n---\nHi\n", 2, "must be a mapping"),
    "duplicate key": ("---\ndescription: a\ndescription: b\n---\nHi\n", 3, "appears twice"),
    "choice without choices": ("---\nvariables:\n  t: {type: choice}\n---\n{{ t }}\n", 3, "needs a non-empty 'choices'"),
    "default not a choice": (
        "---\nvariables:\n  t: {type: choice, choices: [a, b], default: c}\n---\n{{ t }}\n",
        3, "must be one of a, b",
    ),
    "unknown variable type": ("---\nvariables:\n  t: {type: str}\n---\n{{ t }}\n", 3, "variables.t.type"),
    "integer default not a number": (
        "---\nvariables:\n  n: {type: integer, default: many}\n---\n{{ n }}\n", 3, "whole number"
    ),
    "required with a default": (
        "---\nvariables:\n  t: {required: true, default: x}\n---\n{{ t }}\n", 3, "cannot have a default"
    ),
    "reserved variable name": ("---\nvariables:\n  loop: {default: x}\n---\nHi\n", 2, "'loop' is reserved"),
    "model without provider": ("---\nmodel: gpt-4o\n---\nHi\n", 2, "PROVIDER:MODEL"),
    "bad regex in validation": (
        "---\nvalidation:\n  required_patterns: ['(']\n---\nHi\n", 2, "not a valid regular expression"
    ),
    "bad JSON schema": ("---\nvalidation:\n  json_schema: {type: nope}\n---\nHi\n", 2, "not a valid JSON Schema"),
    "conflicting output modes": (
        "---\noutput: buffer\nvalidation: {mode: stream}\n---\nHi\n", 3, "keep one"
    ),
    "negative timeout": ("---\ntimeouts: {total: -1}\n---\nHi\n", 2, "timeouts.total"),
    "name does not match file": ("---\nname: other\n---\nHi\n", 2, "does not match the file name"),
    "empty body": ("---\ndescription: x\n---\n\n", 4, "the prompt is empty"),
    "Jinja syntax error": ("---\n---\nline one\n{% if x %}\nnever closed\n", 5, "Jinja syntax error"),
    "undeclared variable in body": (
        "---\nvariables:\n  a: {default: x}\n---\n{{ a }}\n\nand {{ b }}\n", 7,
        "variable 'b' is used but not declared",
    ),
    "undeclared variable in system prompt": (
        "---\nsystem: |\n  You are helpful.\n  Speak {{ language }}.\n---\nHi\n", 4,
        "variable 'language' is used but not declared",
    ),
}


@pytest.mark.parametrize("text, line, fragment", INVALID_CASES.values(), ids=INVALID_CASES.keys())
def test_invalid_templates_name_file_and_line(tmp_path: Path, text: str, line: int | None, fragment: str) -> None:
    path = write_template(tmp_path, "t", text)
    with pytest.raises(TemplateError) as caught:
        load_template(path)
    error = caught.value
    assert error.path == path
    assert error.line == line
    assert fragment in error.message
    assert error.message.startswith(f"{path}:{line}: " if line else f"{path}: ")


def test_file_name_must_be_a_valid_template_name(tmp_path: Path) -> None:
    path = tmp_path / "has space.md"
    path.write_text("Hi")
    with pytest.raises(TemplateError, match="file name must be letters"):
        load_template(path)


def test_content_hash_is_of_the_file_bytes(tmp_path: Path) -> None:
    path = write_template(tmp_path, "t", "Hello\n")
    template = load_template(path)
    assert template.content_hash == content_hash(b"Hello\n")
    assert len(template.content_hash) == 12
    path.write_text("Hello!\n")
    assert load_template(path).content_hash != template.content_hash


def test_metadata_is_exposed(tmp_path: Path) -> None:
    path = write_template(tmp_path, "summary", (
        "---\ndescription: Summarise\nmodel: demo:assistant\ntemperature: 0.2\n"
        "system: Be brief about {{ topic }}.\n"
        "variables:\n  topic: {description: What about, default: cats}\n"
        "output: buffer\nvalidation: {json: true}\ntimeouts: {first_token: 5}\n---\n{{ topic }}\n"
    ))
    template = load_template(path)
    assert template.name == "summary"
    assert template.description == "Summarise"
    assert template.model == "demo:assistant"
    assert template.variables["topic"].description == "What about"
    assert template.rules.mode == "buffer" and template.rules.must_be_json
    assert template.render({}).system == "Be brief about cats."


@pytest.mark.parametrize(
    "variable, line, found",
    [
        ("v: {default: no}", 3, "variables.v.default: must be text, but YAML read it as the boolean false"),
        ("v:\n    description: code\n    default: 0123", 5, "variables.v.default: must be text, but YAML read it as the number 83"),
        ("v:\n    type: choice\n    choices: [a, b]\n    default: 1.5", 6, "variables.v.default: must be text, but YAML read it as the number 1.5"),
        ("v:\n    type: choice\n    choices:\n      - maybe\n      - yes", 7, "variables.v.choices.1: must be text, but YAML read it as the boolean true"),
        ("v: {type: long_text, default: on}", 3, "variables.v.default: must be text"),
    ],
)
def test_yaml_non_text_defaults_and_choices_are_refused(tmp_path: Path, variable: str, line: int, found: str) -> None:
    path = write_template(tmp_path, "t", f"---\nvariables:\n  {variable}\n---\n{{{{ v }}}}\n")
    with pytest.raises(TemplateError) as caught:
        load_template(path)
    assert caught.value.line == line
    assert found in caught.value.message
    assert "put the value in quotes" in caught.value.message


def test_quoted_yaml_values_stay_text(tmp_path: Path) -> None:
    path = write_template(
        tmp_path, "t", "---\nvariables:\n  v: {type: choice, choices: ['yes', 'no'], default: 'no'}\n"
        "  code: {default: '0123'}\n---\n{{ v }} {{ code }}\n"
    )
    assert load_template(path).render({}).prompt == "no 0123"
