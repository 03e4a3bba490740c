"""Hostile regular expressions through every door of ours: validation rules, a dataset's
expect_regex, a JSON Schema's pattern/patternProperties. Each is refused up front with a sentence, or
runs in linear time while the event loop keeps ticking."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from llmtool.checks import CheckPool, check_expectations, check_text
from llmtool.evaluation import DatasetError, Expectations, load_dataset, run_evaluation
from llmtool.service import LLMService
from llmtool.settings import Settings
from llmtool.templates import load_template
from llmtool.validation import ValidationRules
from tests.helpers import write_template
from tests.hostile.conftest import ticking

EVIL = "(a+)+$"
ATTACK = "a" * 27 + "!"  # 9 s on Python's re; each extra "a" doubles it
LONG_ATTACK = "a" * 50_000 + "!"  # Python's re: longer than the universe; RE2: a millisecond
SCHEMA_TEXT = '"' + "a" * 5000 + '!"'

# (name, rules, answer, the problems expected)
LINEAR_RULES: dict[str, tuple[dict[str, Any], str, list[str]]] = {
    "required (a+)+$": ({"required_patterns": [EVIL]}, ATTACK, [f"required pattern not found: {EVIL}"]),
    "forbidden (a+)+$": ({"forbidden_patterns": [EVIL]}, ATTACK, []),
    "forbidden (a+)+$, long": ({"forbidden_patterns": [EVIL]}, LONG_ATTACK, []),
    "forbidden (a|a)*$": ({"forbidden_patterns": ["(a|a)*b"]}, LONG_ATTACK, []),
    "forbidden (a|aa)+$": ({"forbidden_patterns": ["^(a|aa)+$"]}, LONG_ATTACK, []),
    "forbidden (.*a){20}": ({"forbidden_patterns": ["(.*a){20}b"]}, LONG_ATTACK, []),
    "required words with spaces": ({"required_patterns": [r"^(\w+\s?)*$"]}, "word " * 5000 + "!", [r"required pattern not found: ^(\w+\s?)*$"]),
    "schema pattern": ({"json_schema": {"type": "string", "pattern": EVIL}}, SCHEMA_TEXT,
                       ["JSON does not match the schema at the top: '" + "a" * 57 + "…' does not match '(a+)+$'"]),
    "schema patternProperties": (
        {"json_schema": {"type": "object", "patternProperties": {EVIL: {"type": "integer"}}, "additionalProperties": False}},
        '{"' + "a" * 5000 + '!": 1}',
        ["JSON does not match the schema at the top: '" + "a" * 5000 + "!' does not match any of the regexes: '(a+)+$'"],
    ),
    "schema patternProperties matched": (
        {"json_schema": {"type": "object", "patternProperties": {EVIL: {"type": "integer"}}}},
        '{"' + "a" * 5000 + '": "x"}',
        ["JSON does not match the schema at " + "a" * 5000 + ": 'x' is not of type 'integer'"],
    ),
    "schema unevaluatedProperties": (
        {"json_schema": {"type": "object", "patternProperties": {EVIL: {}}, "unevaluatedProperties": False}},
        '{"' + "a" * 5000 + '!": 1}',
        ["JSON does not match the schema at the top: Unevaluated properties are not allowed ('" + "a" * 5000 + "!' was unexpected)"],
    ),
    "schema unevaluatedProperties, draft 2019-09": (
        {"json_schema": {"$schema": "https://json-schema.org/draft/2019-09/schema", "type": "object",
                         "patternProperties": {EVIL: {}}, "unevaluatedProperties": False}},
        '{"' + "a" * 5000 + '!": 1}',
        ["JSON does not match the schema at the top: Unevaluated properties are not allowed ('" + "a" * 5000 + "!' was unexpected)"],
    ),
    "fence of many newlines (the old ``` regex was O(n³))": ({"json": True}, "```\n" + "\n" * 20_000 + "x",
                                                              ["not valid JSON: Expecting value at line 1 column 1"]),
    "JSON nested 100,000 deep": ({"json": True}, "[" * 100_000, ["not valid JSON: nested too deeply at line 1 column 1"]),
}


@pytest.mark.parametrize(("rules", "answer", "expected"), LINEAR_RULES.values(), ids=LINEAR_RULES.keys())
async def test_hostile_patterns_in_rules_run_in_linear_time(
    pool: CheckPool, rules: dict[str, Any], answer: str, expected: list[str]
) -> None:
    declared = ValidationRules.model_validate(rules)
    async with ticking() as ticker:
        started = time.perf_counter()
        problems = await check_text(declared, answer, time_limit=10)
        elapsed = time.perf_counter() - started
    assert problems == expected
    assert elapsed < 5  # including a worker's start; the match itself takes milliseconds
    assert ticker.max_lag < 1.0
    assert declared.check(answer) == expected  # the same verdict in the caller's thread, as fast


def _nested(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {}
    node = schema
    for _ in range(depth):
        node["not"] = {}
        node = node["not"]
    return schema


# (name, rules, words the refusal must contain)
REFUSED_RULES: dict[str, tuple[dict[str, Any], list[str]]] = {
    "backreference": ({"required_patterns": [r"(a+)\1"]}, [r"'(a+)\\1'", "backreferences"]),
    "named backreference": ({"forbidden_patterns": [r"(?P<x>a)(?P=x)"]}, ["(?P=x)", "backreferences"]),
    "lookahead": ({"required_patterns": [r"foo(?=bar)"]}, ["'foo(?=bar)'", "lookahead and lookbehind"]),
    "negative lookbehind": ({"required_patterns": [r"(?<!x)foo"]}, ["lookahead and lookbehind"]),
    "possessive": ({"forbidden_patterns": [r"a++b"]}, ["'a++b'", "possessive"]),
    "atomic group": ({"forbidden_patterns": [r"(?>a+)b"]}, ["atomic groups"]),
    "conditional": ({"forbidden_patterns": [r"(a)?(?(1)b|c)"]}, ["conditional"]),
    "verbose flag": ({"forbidden_patterns": [r"(?x) a b"]}, ["(?x)"]),
    "repetition above 1000": ({"forbidden_patterns": [r"a{2000}"]}, ["above 1000"]),
    "too large": ({"forbidden_patterns": [r"(\w{40}){20}"]}, ["too large"]),
    "too long": ({"forbidden_patterns": ["a" * 5000]}, ["5,000 characters long; at most 4,096"]),
    "not a regex": ({"required_patterns": ["("]}, ["'('", "not a valid regular expression"]),
    "schema pattern backreference": ({"json_schema": {"properties": {"x": {"type": "string", "pattern": r"(a)\1"}}}},
                                     ["json_schema properties/x/pattern", "backreferences"]),
    "schema patternProperties lookahead": ({"json_schema": {"patternProperties": {"(?=x)": {}}}},
                                           ["json_schema patternProperties key", "lookahead"]),
    "schema nested 10,000 deep": ({"json_schema": _nested(10_000)}, ["nested too deeply"]),
}


@pytest.mark.parametrize(("rules", "words"), REFUSED_RULES.values(), ids=REFUSED_RULES.keys())
async def test_patterns_re2_cannot_run_are_refused_when_declared(rules: dict[str, Any], words: list[str]) -> None:
    async with ticking() as ticker:
        with pytest.raises(ValidationError) as refused:
            ValidationRules.model_validate(rules)
    for word in words:
        assert word in str(refused.value)
    assert ticker.max_lag < 1.0


def test_many_costly_patterns_are_refused_within_the_compile_budget() -> None:
    costly = [rf"\w{{45}}x{i}" for i in range(60)]  # each ~20 ms to compile: 1.2 s together
    started = time.perf_counter()
    with pytest.raises(ValidationError, match=r"take more than 0\.1 s to prepare"):
        ValidationRules(forbidden_patterns=costly)
    assert time.perf_counter() - started < 0.5


ECHO = """---
model: demo:echo
variables:
  word: {}
---
{{ word }}
"""


async def test_dataset_expect_regex_is_linear_end_to_end(tmp_path: Path, fast_settings: Settings, pool: CheckPool) -> None:
    """The issue's reproduction: demo:echo answers 27 a's and a "!", expect_regex (a+)+$."""
    template = load_template(write_template(tmp_path, "echo", ECHO))
    dataset_file = tmp_path / "evil.csv"
    dataset_file.write_text(f"id,word,expect_regex\nshort,{ATTACK},{EVIL}\nlong,{'a' * 10_000}!,{EVIL}\nok,aaa,{EVIL}\n")
    dataset = load_dataset(dataset_file, template)
    service = LLMService(fast_settings)
    try:
        async with ticking() as ticker:
            started = time.perf_counter()
            report = await run_evaluation(service, template, dataset, ["demo:echo"])
            elapsed = time.perf_counter() - started
    finally:
        await service.aclose()
    verdicts = {r.case_id: (r.status, r.problems) for r in report.results}
    assert verdicts == {
        "short": ("failed", [f"expected to match /{EVIL}/"]),
        "long": ("failed", [f"expected to match /{EVIL}/"]),
        "ok": ("passed", []),
    }
    assert elapsed < 10
    assert ticker.max_lag < 1.0


async def test_expectations_checked_in_the_pool_for_a_long_answer(pool: CheckPool) -> None:
    expect = Expectations(regex=EVIL, contains=["b"], json_valid=True)
    async with ticking() as ticker:
        problems = await check_expectations(expect, LONG_ATTACK, time_limit=10)
    assert problems == ["expected to contain 'b'", f"expected to match /{EVIL}/",
                        "expected JSON: Expecting value at line 1 column 1"]
    assert pool.started >= 1  # 50,000 characters: not inline
    assert ticker.max_lag < 1.0


@pytest.mark.parametrize(
    ("regex", "words"),
    [
        (r"(a)\1", [r"expect_regex '(a)\\1' cannot be used", "backreferences"]),
        ("(?<=a)b", ["expect_regex '(?<=a)b' cannot be used", "lookbehind"]),
        ("(", ["expect_regex '(' is not a valid regular expression"]),
    ],
)
def test_dataset_regex_re2_cannot_run_is_refused_when_read(tmp_path: Path, regex: str, words: list[str]) -> None:
    template = load_template(write_template(tmp_path, "echo", ECHO))
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"word": "x", "expect_regex": regex}) + "\n")
    with pytest.raises(DatasetError) as refused:
        load_dataset(path, template)
    [problem] = refused.value.problems
    assert problem.startswith(f"{path}:1: ")
    for word in words:
        assert word in problem
