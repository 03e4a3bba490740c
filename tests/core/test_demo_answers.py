"""The demo model's JSON answers validate against the schema they were asked for."""

import jsonschema
import pytest

from llmtool.providers.demo_answers import instance_of

SCHEMAS = [
    {"type": "object", "required": ["label"], "properties": {"label": {"enum": ["a", "b"]}}},
    {"type": "object", "properties": {"n": {"type": "integer", "minimum": 3}, "x": {"type": "number"}}},
    {"type": "array", "minItems": 2, "items": {"type": "string", "minLength": 20}},
    {"type": "object", "properties": {"when": {"type": "string", "format": "date"},
                                      "who": {"type": "string", "maxLength": 5}}},
    {"anyOf": [{"type": "null"}, {"type": "boolean"}]},
    {"type": ["string", "null"]},
    {"allOf": [{"type": "object", "properties": {"a": {"const": 1}}}, {"required": ["a"]}]},
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_instance_validates(schema):
    jsonschema.validate(instance_of(schema, "some prompt text"), schema)


def test_an_enum_picks_the_option_the_prompt_mentions():
    schema = {"enum": ["billing", "bug", "feature"]}
    assert instance_of(schema, "I think this is a bug, not billing") == "bug"
