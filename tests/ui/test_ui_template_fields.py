"""Templates as the page shows them: variables → fields, fields → values, preview, the list."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmtool.errors import InvalidRequestError
from llmtool.templates import RenderedPrompt, TemplateError, TemplateRegistry
from llmtool.ui.template_fields import (
    NONE,
    FieldSpec,
    chosen,
    code_block,
    field_specs,
    initial_values,
    preview_markdown,
    problems_markdown,
    template_choices,
    template_info,
    template_label,
    template_values,
)
from tests.helpers import SHIPPED_PROMPTS, write_template

EVERY_TYPE = """---
description: Every variable type
model: demo:assistant
output: buffer
validation: {json: true}
variables:
  title: {type: text, description: A title}
  body: {type: long_text, default: "Some text"}
  ratio: {type: number, default: 0.5}
  count: {type: integer}
  tone: {type: choice, choices: [warm, cold], default: warm}
  shout: {type: boolean}
  sign: {type: text, required: false}
---
{{ title }} / {{ body }} / {{ ratio }} / {{ count }} / {{ tone }} / {{ shout }} / [{{ sign }}]
"""
OTHER = """---
variables:
  tone: {type: text, default: neutral, description: "Not used: every declares it first"}
  extra: {type: integer, default: 3}
---
{{ tone }} {{ extra }}
"""


@pytest.fixture
def registry(tmp_path: Path) -> TemplateRegistry:
    write_template(tmp_path, "every", EVERY_TYPE)
    write_template(tmp_path, "other", OTHER)
    return TemplateRegistry(tmp_path)


def test_each_variable_type_becomes_a_field_with_its_default(registry: TemplateRegistry) -> None:
    specs = field_specs([registry.get("every")])
    assert [(s.name, s.kind, s.value, s.required) for s in specs] == [
        ("title", "text", None, True),
        ("body", "long_text", "Some text", False),
        ("ratio", "number", 0.5, False),
        ("count", "integer", None, True),
        ("tone", "choice", "warm", False),
        ("shout", "boolean", None, True),
        ("sign", "text", None, False),
    ]
    title = specs[0]
    assert title.label == "title *" and title.info == "A title · required"
    assert specs[4].choices == ("warm", "cold")
    assert specs[1].label == "body" and specs[1].info == ""


def test_compare_fields_are_the_union_with_the_first_declaring_templates_spec(registry: TemplateRegistry) -> None:
    specs = {s.name: s for s in field_specs([registry.get("every"), registry.get("other")])}
    assert list(specs)[-1] == "extra"
    assert specs["tone"].kind == "choice" and specs["tone"].value == "warm"  # every's, not other's
    assert specs["tone"].used_by == ("every", "other")
    assert specs["tone"].info == "used by every, other"  # every's spec: no description
    assert specs["extra"] == FieldSpec(name="extra", kind="integer", value=3, info="used by other",
                                       used_by=("other",))


def test_the_same_template_twice_is_not_a_union(registry: TemplateRegistry) -> None:
    every = registry.get("every")
    assert field_specs([every, every]) == field_specs([every])


def test_initial_values_are_what_the_fields_show(registry: TemplateRegistry) -> None:
    values = initial_values(field_specs([registry.get("every")]))
    assert values == {"title": None, "body": "Some text", "ratio": 0.5, "count": None, "tone": "warm",
                      "shout": False, "sign": None}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"title": "T", "count": 2.0, "shout": True}, {"title": "T", "count": 2.0, "shout": True}),
        ({"title": "T", "body": "", "sign": "   ", "ratio": None}, {"title": "T"}),  # empty → not given
        ({"title": "T", "shout": False}, {"title": "T", "shout": False}),  # false is a value
        ({"title": "T", "nope": "x"}, {"title": "T", "nope": "x"}),  # strict: render reports it
        (None, {}),
    ],
)
def test_field_values_become_template_values(registry: TemplateRegistry, fields, expected) -> None:
    assert template_values(registry.get("every"), fields) == expected


def test_empty_fields_let_defaults_apply_and_required_ones_be_reported(registry: TemplateRegistry) -> None:
    every = registry.get("every")
    values = template_values(every, {"title": "T", "body": "", "count": 2, "shout": True, "sign": ""})
    assert every.render(values).prompt == "T / Some text / 0.5 / 2 / warm / True / []"
    with pytest.raises(TemplateError) as raised:
        every.render(template_values(every, {"title": "", "count": 1, "shout": False}))
    assert "missing required variable 'title' (A title)" in raised.value.message
    assert raised.value.message.startswith(f"{every.path}:")  # file:line


def test_non_strict_values_drop_what_the_template_does_not_declare(registry: TemplateRegistry) -> None:
    assert template_values(registry.get("other"), {"tone": "x", "title": "T"}, strict=False) == {"tone": "x"}


def test_variables_must_be_an_object(registry: TemplateRegistry) -> None:
    with pytest.raises(InvalidRequestError, match="variables must be a JSON object"):
        template_values(registry.get("every"), ["a"])  # type: ignore[arg-type]


def test_choices_list_templates_then_broken_files(tmp_path: Path) -> None:
    write_template(tmp_path, "good", OTHER)
    write_template(tmp_path, "bad", "---\nvariables: [oops\n---\nx\n")
    write_template(tmp_path, "zed", OTHER)
    registry = TemplateRegistry(tmp_path)
    assert template_choices(registry.entries()) == [
        (NONE, NONE), ("good", "good"), ("zed", "zed"), ("bad ⚠ does not load", "bad")
    ]
    problems = problems_markdown(registry.problems())
    assert problems.startswith("⚠ 1 template file could not be loaded (the others work):\n- ")
    assert f"{tmp_path / 'bad.md'}:" in problems
    assert problems_markdown([]) == ""


@pytest.mark.parametrize(("picked", "expected"), [(NONE, None), ("", None), (None, None), (" x ", "x")])
def test_chosen(picked, expected) -> None:
    assert chosen(picked) == expected


def test_template_info_names_the_version(registry: TemplateRegistry) -> None:
    every = registry.get("every")
    assert template_info(every) == (
        f"_Every variable type_ · model demo:assistant · buffered output · every @ {every.content_hash}"
    )
    assert template_label("x", None) == "x"


def test_preview_shows_the_text_literally() -> None:
    text = "Use ```python fences``` and <b>tags</b>"
    preview = preview_markdown(RenderedPrompt(system=None, prompt=text))
    assert preview.startswith("**System prompt** · none\n\n**User prompt** · 39 characters")
    assert "````text\n" + text + "\n````" in preview  # a longer fence than any in the text
    assert code_block("plain") == "```text\nplain\n```"


def test_shipped_templates_make_fields() -> None:
    registry = TemplateRegistry(SHIPPED_PROMPTS)
    assert registry.problems() == []
    for template in registry.list():
        values = initial_values(field_specs([template]))
        assert template.render(template_values(template, values)).prompt  # the defaults render
