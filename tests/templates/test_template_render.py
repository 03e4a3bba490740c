"""Rendering: the sandbox refuses escapes, variables are checked, errors name the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmtool.templates import Template, TemplateError, load_template
from tests.helpers import write_template

SANDBOX_ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__['os'] }}",
    "{{ lipsum.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ who.__class__.__base__ }}",
    "{{ 'x'.__len__() }}",
    "{{ '{0.__class__}'.format(who) }}",
    "{% set items = [1] %}{{ items.append(2) }}",
    "{{ who|attr('__class__') }}",
    # CVE-2025-27516: |attr('format') reaching str.format around the sandbox's format check.
    "{{ ('{0.__class__.__mro__[1].__subclasses__}')|attr('format')('x') }}",
]


def template_with(tmp_path: Path, body: str, front: str = "variables:\n  who: {default: Ada}\n") -> Template:
    return load_template(write_template(tmp_path, "t", f"---\n{front}---\nline one\n{body}\n"))


@pytest.mark.parametrize("code", SANDBOX_ESCAPES)
def test_sandbox_refuses_escapes(tmp_path: Path, code: str) -> None:
    template = template_with(tmp_path, code)
    with pytest.raises(TemplateError) as caught:
        template.render({})
    assert caught.value.line == 6  # the escape's own line in the file
    assert "unsafe template code refused by the sandbox" in caught.value.message


def test_strict_undefined_attribute_names_file_and_line(tmp_path: Path) -> None:
    template = template_with(tmp_path, "Hello {{ who.name }}")
    with pytest.raises(TemplateError) as caught:
        template.render({})
    assert caught.value.message == f"{template.path}:6: undefined value in the prompt: 'str object' has no attribute 'name'"


def test_runtime_error_in_system_prompt_names_its_line(tmp_path: Path) -> None:
    front = "system: |\n  one\n  two {{ 1 / n }}\nvariables:\n  n: {type: integer, default: 0}\n"
    template = template_with(tmp_path, "{{ n }}", front=front)
    with pytest.raises(TemplateError) as caught:
        template.render({})
    assert caught.value.line == 4
    assert "ZeroDivisionError" in caught.value.message


def test_missing_required_variable_names_its_declaration(tmp_path: Path) -> None:
    front = "variables:\n  topic: {description: What to write about}\n  tone: {default: calm}\n"
    template = template_with(tmp_path, "{{ topic }} {{ tone }}", front=front)
    with pytest.raises(TemplateError) as caught:
        template.render({"tone": "warm"})
    assert caught.value.line == 3
    assert "missing required variable 'topic' (What to write about)" in caught.value.message
    assert caught.value.message.startswith(f"{template.path}:3: ")


def test_unknown_variable_is_refused_with_the_declared_ones(tmp_path: Path) -> None:
    template = template_with(tmp_path, "{{ who }}")
    with pytest.raises(TemplateError) as caught:
        template.render({"whom": "Bob"})
    assert caught.value.line == 2  # the `variables:` key
    assert "unknown variable 'whom': template 't' declares who" in caught.value.message


@pytest.mark.parametrize(
    "spec, raw, problem",
    [
        ("{type: integer}", "4.5", "must be a whole number"),
        ("{type: number}", "lots", "must be a number"),
        ("{type: boolean}", "maybe", "must be true or false"),
        ("{type: choice, choices: [a, b]}", "c", "must be one of a, b"),
        ("{type: number}", True, "must be a number"),
    ],
)
def test_values_are_checked_against_their_type(tmp_path: Path, spec: str, raw: object, problem: str) -> None:
    template = template_with(tmp_path, "{{ v }}", front=f"variables:\n  v: {spec}\n")
    with pytest.raises(TemplateError, match=problem):
        template.render({"v": raw})


def test_check_values_lists_every_problem_without_raising(tmp_path: Path) -> None:
    front = "variables:\n  a: {type: integer}\n  b: {type: boolean, default: true}\n"
    template = template_with(tmp_path, "{{ a }}{{ b }}", front=front)
    _bound, problems = template.check_values({"b": "nah", "c": 1})
    assert problems == [
        "unknown variable 'c': template 't' declares a, b",
        "missing required variable 'a'",
        "variable 'b' must be true or false, got 'nah'",
    ]
    assert template.check_values({"a": "7"}) == ({"a": 7, "b": True}, [])



def test_huge_power_is_refused_without_hanging_at_load(tmp_path: Path) -> None:
    # Jinja would fold this constant while compiling: the loader itself would hang.
    template = template_with(tmp_path, "{{ (9 ** 999999999) % 7 }}")
    with pytest.raises(TemplateError, match=r"exponent over 100") as caught:
        template.render({})
    assert caught.value.line == 6


@pytest.mark.parametrize(
    "code, text",
    [("{{ 2 ** 10 }} {{ 2.0 ** 0.5 }}", "1024 1.4142135623730951"), ("{{ 'ab' * 3 }} {{ 3 * 4 }}", "ababab 12")],
)
def test_small_powers_and_repeats_still_work(tmp_path: Path, code: str, text: str) -> None:
    assert template_with(tmp_path, code).render({}).prompt == f"line one\n{text}"


@pytest.mark.parametrize(
    "code",
    ["{{ 'x' * 50000000 }}", "{{ [1, 2] * 10000000 }}", "{% for i in range(10000) %}{{ 'y' * 200 }}{% endfor %}"],
)
def test_rendered_text_is_capped(tmp_path: Path, code: str) -> None:
    template = template_with(tmp_path, code)
    with pytest.raises(TemplateError, match=r"the prompt is too long: .*1,000,000 characters"):
        template.render({})


@pytest.mark.parametrize(
    "code",
    ["{{ 'x'|center(300000000) }}", "{{ '%300000000d' % 1 }}", "{{ '%300000000d'|format(1) }}", "{{ 'a'|indent(10**8, true) }}"],
)
def test_huge_widths_are_refused_at_render_not_built_at_load(tmp_path: Path, code: str) -> None:
    template = template_with(tmp_path, code)  # Jinja used to fold these while compiling
    with pytest.raises(TemplateError, match=r"the prompt is too long: .* more than a prompt can need"):
        template.render({})


def test_filters_and_formats_still_work(tmp_path: Path) -> None:
    code = "{{ who|upper }} {{ '%5.1f'|format(2.25) }} {{ '%s!' % who }} {{ [3, 1]|sort|join(',') }} {{ who|attr('upper')() }}"
    assert template_with(tmp_path, code).render({}).prompt == "line one\nADA   2.2 Ada! 1,3 ADA"
