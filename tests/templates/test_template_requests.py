"""A template becomes an ordinary RunRequest carrying its rules, mode, timeouts, name and hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmtool.events import Completed, Validated
from llmtool.service import LLMService
from llmtool.settings import Settings
from llmtool.templates import TemplateError, load_template
from tests.helpers import write_template

JSON_TEMPLATE = """---
description: Extract a person
model: demo:assistant
temperature: 0.1
max_output_tokens: 300
system: Extract people from {{ source }}.
variables:
  text: {type: long_text}
  source: {default: an email}
output: buffer
validation:
  json_schema:
    type: object
    required: [name, age]
    properties:
      name: {type: string}
      age: {type: integer, minimum: 0}
timeouts: {first_token: 20, total: 90}
---
{{ text }}
"""


def test_request_carries_everything_from_the_template(tmp_path: Path) -> None:
    template = load_template(write_template(tmp_path, "person", JSON_TEMPLATE))
    request = template.to_run_request({"text": "Ada, 36"})
    assert request.model == "demo:assistant"
    assert request.system == "Extract people from an email."
    assert request.messages[-1].content == "Ada, 36"
    assert (request.temperature, request.max_output_tokens) == (0.1, 300)
    assert request.validation.mode == "buffer"
    assert request.validation.json_schema["required"] == ["name", "age"]
    assert (request.timeouts.first_token, request.timeouts.total) == (20, 90)
    assert (request.template, request.template_hash) == ("person", template.content_hash)


def test_arguments_override_the_template(tmp_path: Path) -> None:
    template = load_template(write_template(tmp_path, "person", JSON_TEMPLATE))
    request = template.to_run_request(
        {"text": "x"}, model="demo:echo", temperature=1.5, max_output_tokens=7
    )
    assert (request.model, request.temperature, request.max_output_tokens) == ("demo:echo", 1.5, 7)


def test_empty_rendered_prompt_is_an_error(tmp_path: Path) -> None:
    path = write_template(tmp_path, "t", "---\nvariables:\n  x: {required: false}\n---\n{{ x }}\n")
    with pytest.raises(TemplateError, match="the rendered prompt is empty") as caught:
        load_template(path).to_run_request({})
    assert caught.value.line == 5


async def test_demo_answers_a_json_template_with_json_that_passes(
    tmp_path: Path, fast_settings: Settings
) -> None:
    template = load_template(write_template(tmp_path, "person", JSON_TEMPLATE))
    service = LLMService(fast_settings)
    try:
        run = service.start(template.to_run_request({"text": "Ada Lovelace, 36"}))
        terminal = await run.wait()
    finally:
        await service.aclose()
    assert isinstance(terminal, Completed)
    validated = next(e for e in run.log if isinstance(e, Validated))
    assert validated.passed and validated.rules_checked == 1
    assert run.request.template == "person"
