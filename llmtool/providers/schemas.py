"""Structured output: asking a provider for a JSON Schema in its own protocol, or by instruction.

OpenAI's strict mode accepts only a subset of JSON Schema (every object closed with
`additionalProperties: false` and listing all its properties as required); a schema outside it is
sent non-strict rather than refused. Whatever was asked, the answer is validated after completion.
"""

from __future__ import annotations

import json
import re
from typing import Any

from llmtool.errors import RequestRejectedError

_NAME = re.compile(r"[^A-Za-z0-9_-]+")
# Words in a provider's 400 that say it is the schema request it cannot take.
_SCHEMA_WORDS = re.compile(
    r"response_format|json_schema|text\.format|output_config\.format|output_format|structured output|"
    r"structured_output|guided_json|grammar|\bschema\b",
    re.IGNORECASE,
)
_STRICT_WORDS = re.compile(r"strict|not permitted|additionalProperties|is required to be supplied", re.IGNORECASE)
_SUMMARY_WORDS = re.compile(r"reasoning\.summary|reasoning summar", re.IGNORECASE)


def schema_name(schema: dict[str, Any]) -> str:
    """A name OpenAI accepts (^[A-Za-z0-9_-]{1,64}$), from the schema's title when it has one."""
    title = schema.get("title")
    name = _NAME.sub("_", title).strip("_") if isinstance(title, str) else ""
    return (name or "answer")[:64]


def strict_compatible(schema: Any) -> bool:
    """Whether OpenAI's strict mode can take this schema as it is."""
    if isinstance(schema, list):
        return all(strict_compatible(item) for item in schema)
    if not isinstance(schema, dict):
        return True
    if schema.get("type") == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is not False:
            return False
        if not isinstance(properties, dict) or set(schema.get("required", [])) != set(properties):
            return False
    return all(strict_compatible(value) for key, value in schema.items() if key != "enum" and key != "const")


def schema_instruction(schema: dict[str, Any]) -> str:
    """The schema as an instruction, for a model or server that cannot be asked for it."""
    return (
        "Answer with JSON only — no prose, no code fences — that is valid against this JSON Schema:\n"
        + json.dumps(schema, ensure_ascii=False, separators=(",", ":"))
    )


def rejects_structured_output(error: RequestRejectedError) -> bool:
    """Whether a provider's refusal (400/404/422) is about the structured-output request."""
    return error.status in (400, 404, 422) and bool(_SCHEMA_WORDS.search(error.message))


def rejects_strict_mode(error: RequestRejectedError) -> bool:
    """Whether it is strict mode, rather than any schema at all, that was refused."""
    return bool(_STRICT_WORDS.search(error.message))


def rejects_reasoning_summary(error: RequestRejectedError) -> bool:
    """OpenAI refuses reasoning summaries to organizations it has not verified (HTTP 400)."""
    return error.status == 400 and bool(_SUMMARY_WORDS.search(error.message))
