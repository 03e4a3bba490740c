"""Validation of a completed answer, declared as data so templates can carry it.

    ValidationRules(max_length=2000, forbidden_words=["lorem"], json_schema={...}, mode="buffer")

`mode="stream"` shows deltas as they come and flags the result at the end; `mode="buffer"` holds
the text back until it passed (structured output, where half a JSON document helps nobody).
A `python` rule names a callable `package.module:function` taking the text and returning
True/None (passed), False, a problem string, or a list of problem strings. It runs server code
on the model's answer, so it is refused unless its module is listed in the settings'
`validator_modules` (see `check_python_rule`), and nothing is imported when rules are declared.

Patterns (`required_patterns`, `forbidden_patterns`, and a JSON Schema's `pattern` and
`patternProperties`) run on RE2, whose matching time is linear in the text: a pattern it cannot run
(a backreference, a lookaround…) is refused when the rules are declared, with the reason. See
`llmtool.checks.patterns` for the few differences from Python's `re`. A server checks answers with
`llmtool.checks.check_text`, in a pool of processes, stopped at a time limit; `check` itself is the
plain function those processes call.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Iterator
from typing import Any, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmtool.checks.patterns import CompileBudget, PatternError, compile_pattern
from llmtool.checks.schema import check_schema_patterns, schema_validator

OutputMode = Literal["stream", "buffer"]
Stage = tuple[str, Callable[[], list[str]]]  # (what is checked, for a message; the check)


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
        budget = CompileBudget(what="the patterns of these rules")  # declared on the event loop: bounded
        for pattern in (*self.required_patterns, *self.forbidden_patterns):
            try:
                budget.compile(pattern)
            except PatternError as exc:
                raise ValueError(str(exc)) from None
        if self.json_schema is not None:
            try:
                jsonschema.validators.validator_for(self.json_schema).check_schema(self.json_schema)
            except jsonschema.SchemaError as exc:
                raise ValueError(f"json_schema is not a valid JSON Schema: {exc.message}") from None
            except RecursionError:
                raise ValueError("json_schema is nested too deeply to be checked") from None
            check_schema_patterns(self.json_schema, budget)
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

    @property
    def only_length(self) -> bool:
        """Whether every rule is a length rule: O(1) to check, never worth another process."""
        return self.rule_count == (self.min_length is not None) + (self.max_length is not None)

    def check(self, text: str) -> list[str]:
        """Every problem with `text`, each a sentence a person understands; [] when it passed."""
        return [problem for _, run in self.stages(text) for problem in run()]

    def stages(self, text: str) -> Iterator[Stage]:
        """The checks of `text` one by one, each named ("the forbidden pattern 'x'"), so a check
        stopped at its time limit can say which one ran too long."""
        yield "the length", lambda: _length_problems(text, self.min_length, self.max_length)
        for pattern in self.required_patterns:
            yield f"the required pattern {pattern!r}", lambda p=pattern: _required(p, text)  # type: ignore[misc]
        for pattern in self.forbidden_patterns:
            yield f"the forbidden pattern {pattern!r}", lambda p=pattern: _forbidden(p, text)  # type: ignore[misc]
        if self.forbidden_words:
            yield "the forbidden words", lambda: _forbidden_words(self.forbidden_words, text)
        if self.must_be_json or self.json_schema is not None:
            yield "the JSON answer" if self.json_schema is None else "the JSON schema", \
                lambda: _json_problems(text, self.json_schema)
        if self.python is not None:
            path = self.python
            yield f"the python rule {path}", lambda: _python_problems(path, text)


def _length_problems(text: str, min_length: int | None, max_length: int | None) -> list[str]:
    problems = []
    if min_length is not None and len(text) < min_length:
        problems.append(f"too short: {len(text)} characters, at least {min_length} required")
    if max_length is not None and len(text) > max_length:
        problems.append(f"too long: {len(text)} characters, at most {max_length} allowed")
    return problems


def _required(pattern: str, text: str) -> list[str]:
    if compile_pattern(pattern).search(text) is None:
        return [f"required pattern not found: {pattern}"]
    return []


def _forbidden(pattern: str, text: str) -> list[str]:
    if (match := compile_pattern(pattern).search(text)) is not None:
        return [f"forbidden pattern found: {pattern} (matched {match.group(0)[:40]!r})"]
    return []


def _forbidden_words(words: list[str], text: str) -> list[str]:
    # Python's re on purpose: \b knows Unicode letters there (RE2's \b is ASCII), and an escaped word
    # between two \b cannot backtrack: O(len(text) × len(word)).
    return [f"forbidden word used: {word}" for word in words
            if re.search(rf"\b{re.escape(word)}\b", text, re.IGNORECASE)]


def parse_json_answer(text: str) -> Any:
    """The JSON in an answer, accepting one surrounding ``` fence as models often add.

    A JSONDecodeError when it is not JSON (also when it is nested too deeply to read)."""
    fenced = unfence(text)
    inner = text if fenced is None else fenced
    try:
        return json.loads(inner)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", inner, 0) from None
    except ValueError as exc:  # a 5,000-digit number: Python's limit on int conversion
        if isinstance(exc, json.JSONDecodeError):
            raise
        raise json.JSONDecodeError(str(exc), inner, 0) from None


def unfence(text: str) -> str | None:
    """The text inside one ``` fence (```json … ```) around the whole answer, else None.

    What the regex `^\\s*```[a-zA-Z]*\\s*\\n(.*)\\n\\s*```\\s*$` (DOTALL) matched, found in linear
    time: that regex backtracked in O(n³) on an answer of "```" and many newlines (8,000: 4 minutes)."""
    start = len(text) - len(text.lstrip())
    end = len(text.rstrip())
    if not text.startswith("```", start) or end - start < 6 or not text.endswith("```", 0, end):
        return None
    after_tag = start + 3
    while after_tag < end and text[after_tag].isascii() and text[after_tag].isalpha():
        after_tag += 1
    # the opening: white space after the tag that holds a newline; the content starts after its last
    opening_end = after_tag
    while opening_end < end and text[opening_end].isspace():
        opening_end += 1
    first_newline = text.rfind("\n", after_tag, opening_end)
    # the closing: white space before the last ``` that holds a newline; the content ends at its last
    closing = end - 3
    closing_start = closing
    while closing_start > start + 3 and text[closing_start - 1].isspace():
        closing_start -= 1
    last_newline = text.rfind("\n", max(closing_start, after_tag), closing)
    if first_newline < 0 or last_newline < 0:
        return None
    if last_newline <= first_newline:  # both in one run of white space: nothing but white space inside
        before = text.rfind("\n", after_tag, last_newline)
        return None if before < 0 else text[before + 1:last_newline]
    return text[first_newline + 1:last_newline]


def _json_problems(text: str, schema: dict[str, Any] | None) -> list[str]:
    try:
        document = parse_json_answer(text)
    except json.JSONDecodeError as exc:
        return [f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"]
    if schema is None:
        return []
    validator = schema_validator(schema)  # RE2 patterns; "format": "date" and friends are checked
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
