"""Validation of a completed answer, declared as data so templates can carry it.

    ValidationRules(max_length=2000, forbidden_words=["lorem"], json_schema={...}, mode="buffer")

`mode="stream"` shows deltas as they come and flags the result at the end; `mode="buffer"` holds
the text back until it passed (structured output, where half a JSON document helps nobody).
A `python` rule names a callable `package.module:function` taking the text and returning
True/None (passed), False, a problem string, or a list of problem strings. It runs server code
on the model's answer, so it is refused unless its module is listed in the settings'
`validator_modules` (see `check_python_rule`), and nothing is imported when rules are declared.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable
from typing import Any, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, model_validator

OutputMode = Literal["stream", "buffer"]
_FENCE = re.compile(r"^\s*```[a-zA-Z]*\s*\n(.*)\n\s*```\s*$", re.DOTALL)


class ValidationRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    mode: OutputMode = "stream"
    min_length: int | None = Field(None, ge=0)
    max_length: int | None = Field(None, ge=1)
    required_patterns: list[str] = Field(default_factory=list)
    forbidden_patterns: list[str] = Field(default_factory=list)
    forbidden_words: list[str] = Field(default_factory=list)
    must_be_json: bool = Field(False, alias="json")
    json_schema: dict[str, Any] | None = None
    python: str | None = Field(None, description="'package.module:function' taking the text.")

    @model_validator(mode="after")
    def _check(self) -> ValidationRules:
        if self.min_length is not None and self.max_length is not None and self.min_length > self.max_length:
            raise ValueError(f"min_length {self.min_length} is more than max_length {self.max_length}")
        for pattern in (*self.required_patterns, *self.forbidden_patterns):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pattern {pattern!r} is not a valid regular expression: {exc}") from None
        if self.json_schema is not None:
            try:
                jsonschema.validators.validator_for(self.json_schema).check_schema(self.json_schema)
            except jsonschema.SchemaError as exc:
                raise ValueError(f"json_schema is not a valid JSON Schema: {exc.message}") from None
        if self.python is not None:
            split_callable_path(self.python)
        return self

    @property
    def rule_count(self) -> int:
        return sum(
            [
                self.min_length is not None,
                self.max_length is not None,
                len(self.required_patterns),
                len(self.forbidden_patterns),
                len(self.forbidden_words),
                self.must_be_json or self.json_schema is not None,
                self.python is not None,
            ]
        )

    def check(self, text: str) -> list[str]:
        """Every problem with `text`, each a sentence a person understands; [] when it passed."""
        problems: list[str] = []
        if self.min_length is not None and len(text) < self.min_length:
            problems.append(f"too short: {len(text)} characters, at least {self.min_length} required")
        if self.max_length is not None and len(text) > self.max_length:
            problems.append(f"too long: {len(text)} characters, at most {self.max_length} allowed")
        for pattern in self.required_patterns:
            if not re.search(pattern, text, re.MULTILINE):
                problems.append(f"required pattern not found: {pattern}")
        for pattern in self.forbidden_patterns:
            if match := re.search(pattern, text, re.MULTILINE):
                problems.append(f"forbidden pattern found: {pattern} (matched {match.group(0)[:40]!r})")
        for word in self.forbidden_words:
            if re.search(rf"\b{re.escape(word)}\b", text, re.IGNORECASE):
                problems.append(f"forbidden word used: {word}")
        if self.must_be_json or self.json_schema is not None:
            problems.extend(_json_problems(text, self.json_schema))
        if self.python is not None:
            problems.extend(_python_problems(self.python, text))
        return problems


def parse_json_answer(text: str) -> Any:
    """The JSON in an answer, accepting one surrounding ``` fence as models often add."""
    fenced = _FENCE.match(text)
    return json.loads(fenced.group(1) if fenced else text)


def _json_problems(text: str, schema: dict[str, Any] | None) -> list[str]:
    try:
        document = parse_json_answer(text)
    except json.JSONDecodeError as exc:
        return [f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"]
    if schema is None:
        return []
    # format_checker: "format": "date" and friends are checked, not only annotations.
    validator_class = jsonschema.validators.validator_for(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    try:
        errors = sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.path)))
    except Exception as exc:  # e.g. a $ref that resolves nowhere: the schema's fault, say so
        return [f"the JSON schema could not be applied: {type(exc).__name__}: {exc}"]
    return [
        f"JSON does not match the schema at {'/'.join(map(str, e.absolute_path)) or 'the top'}: {e.message}"
        for e in errors
    ]


def split_callable_path(path: str) -> tuple[str, str]:
    """'package.module:function' (or 'package.module.function') → (module, function)."""
    module_name, sep, attribute = path.partition(":")
    if not sep:
        module_name, _, attribute = path.rpartition(".")
    if not module_name or not attribute or not all(
        part.isidentifier() for part in [*module_name.split("."), attribute]
    ):
        raise ValueError(f"python validator {path!r} must be written 'package.module:function'")
    return module_name, attribute


def check_python_rule(path: str, allowed_modules: list[str]) -> None:
    """Refuse a validator outside the allowed modules, or one that cannot be loaded (ValueError)."""
    module_name, _ = split_callable_path(path)
    if not any(module_name == m or module_name.startswith(m + ".") for m in allowed_modules):
        raise ValueError(
            f"python validator {path!r} is not allowed: it would run server code, so list its "
            f"module in validator_modules in the config file (allowed now: {allowed_modules or 'none'})"
        )
    resolve_callable(path)


def resolve_callable(path: str) -> Callable[[str], Any]:
    module_name, attribute = split_callable_path(path)
    try:
        target = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"python validator {path!r} cannot be loaded: {exc}") from None
    if not callable(target):
        raise ValueError(f"python validator {path!r} is not callable")
    return target


def _python_problems(path: str, text: str) -> list[str]:
    try:
        verdict = resolve_callable(path)(text)
    except Exception as exc:  # a broken user validator is a finding, not a crash
        return [f"validator {path} raised {type(exc).__name__}: {exc}"]
    if verdict is True or verdict is None:
        return []
    if verdict is False:
        return [f"validator {path} rejected the answer"]
    if isinstance(verdict, str):
        return [verdict]
    if isinstance(verdict, (list, tuple)):
        return [str(p) for p in verdict]
    return [
        f"validator {path} returned {type(verdict).__name__}; expected True, False, None, "
        "a problem string or a list of them"
    ]
