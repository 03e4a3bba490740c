"""JSON Schema validation whose regular expressions run on RE2, never on Python's backtracking `re`.

    check_schema_patterns(schema)          # ValueError naming a `pattern` RE2 cannot run, up front
    validator = schema_validator(schema)   # a jsonschema validator: iter_errors(document), …

`jsonschema` searches `pattern` and `patternProperties` with `re.search`: a schema with
`"pattern": "(a+)+$"` and a string of 30 `a`s and a `!` takes minutes. Here:

- `pattern`, `patternProperties` and `additionalProperties` are keywords of our own (same messages
  as jsonschema's), searching with RE2 in the ECMA-262 flavour the JSON Schema specification names
  (see `llmtool.checks.patterns`);
- `unevaluatedProperties` (drafts 2019-09 and 2020-12) finds the keys that `patternProperties`
  evaluated through jsonschema's own helpers, which call `re.search` of their module: that name is
  pointed at `_Re2Search` below, once, when this module is imported. Only llmtool uses jsonschema
  in this process; a pattern RE2 cannot run raises there instead of backtracking.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any

import jsonschema
import jsonschema._legacy_keywords
import jsonschema._utils
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator

from llmtool.checks.patterns import CompileBudget, Pattern, PatternError, compile_pattern

_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples"})  # their values are data, not schemas


def check_schema_patterns(schema: Any, budget: CompileBudget | None = None) -> None:
    """Refuse (ValueError) a schema with a `pattern` or `patternProperties` RE2 cannot run."""
    budget = budget or CompileBudget(what="the patterns of the json_schema")
    for where, pattern in schema_patterns(schema):
        try:
            budget.compile(pattern, "ecma")
        except PatternError as exc:
            raise ValueError(f"json_schema {where}: {exc}") from None


def schema_patterns(schema: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, str]]:
    """(where, pattern) for every `pattern` and `patternProperties` key in the schema."""
    stack: list[tuple[tuple[str, ...], Any]] = [(path, schema)]
    while stack:  # a loop, not recursion: a schema nested 10,000 deep is refused, not a RecursionError
        at, node = stack.pop()
        if isinstance(node, list):
            stack.extend(((*at, str(i)), item) for i, item in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            here = (*at, str(key))
            if key == "pattern" and isinstance(value, str):
                yield "/".join(here), value
            elif key == "patternProperties" and isinstance(value, dict):
                for pattern in value:
                    yield "/".join(here) + " key", str(pattern)
            if key not in _DATA_KEYWORDS:
                stack.append((here, value))


def schema_validator(schema: dict[str, Any]) -> Validator:
    """A validator for `schema` (its draft from `$schema`, else the latest) with RE2 patterns and
    format checks (`"format": "date"` is checked, not only an annotation)."""
    base = jsonschema.validators.validator_for(schema)
    return _re2_class(base)(schema, format_checker=base.FORMAT_CHECKER)


@functools.cache
def _re2_class(base: type[Validator]) -> type[Validator]:
    ours = {"pattern": _pattern, "patternProperties": _pattern_properties, "additionalProperties": _additional}
    return jsonschema.validators.extend(base, {k: v for k, v in ours.items() if k in base.VALIDATORS})


def _regex(pattern: str) -> Pattern:
    return compile_pattern(pattern, "ecma")


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "string"):
        return
    try:
        regex = _regex(pattern)
    except PatternError as exc:
        yield ValidationError(str(exc))
        return
    if regex.search(instance) is None:
        shown = repr(instance) if len(instance) <= 60 else repr(instance[:57] + "…")
        yield ValidationError(f"{shown} does not match {pattern!r}")


def _pattern_properties(validator: Any, patterns: dict[str, Any], instance: Any, schema: Any
                        ) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        try:
            regex = _regex(pattern)
        except PatternError as exc:
            yield ValidationError(str(exc))
            continue
        for key, value in instance.items():
            if regex.search(key) is not None:
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _extras(instance: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    properties = schema.get("properties", {})
    regexes = []
    for pattern in schema.get("patternProperties", {}):
        try:
            regexes.append(_regex(pattern))
        except PatternError:
            continue  # reported by patternProperties
    return [key for key in instance
            if key not in properties and not any(r.search(key) is not None for r in regexes)]


def _additional(validator: Any, additional: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    extras = _extras(instance, schema)
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        if "patternProperties" in schema:
            verb = "does" if len(extras) == 1 else "do"
            joined = ", ".join(repr(each) for each in sorted(extras))
            patterns = ", ".join(repr(each) for each in sorted(schema["patternProperties"]))
            yield ValidationError(f"{joined} {verb} not match any of the regexes: {patterns}")
        else:
            shown = sorted(extras, key=str)
            verb = "was" if len(shown) == 1 else "were"
            yield ValidationError(
                f"Additional properties are not allowed ({', '.join(repr(e) for e in shown)} {verb} unexpected)"
            )


class _Re2Search:
    """Stands for the `re` module inside jsonschema's helpers: `search` runs on RE2."""

    def __getattr__(self, name: str) -> Any:
        return getattr(re, name)

    @staticmethod
    def search(pattern: str, string: str, flags: int = 0) -> Any:
        if flags or not isinstance(pattern, str) or not isinstance(string, str):
            raise PatternError(f"pattern {pattern!r} cannot be searched with flags or in bytes")
        return _regex(pattern).search(string)


for _module in (jsonschema._utils, jsonschema._legacy_keywords):
    if getattr(_module, "re", None) is re:
        _module.re = _Re2Search()  # type: ignore[attr-defined]
