"""Datasets: CSV and JSONL rows become checked cases; every bad row is named by file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmtool.evaluation import DatasetError, Expectations, load_dataset
from llmtool.templates import Template, load_template
from tests.helpers import write_template

TEMPLATE = """---
variables:
  text: {type: long_text}
  count: {type: integer, default: 3}
  strict: {type: boolean, default: false}
---
{{ text }} {{ count }} {{ strict }}
"""


@pytest.fixture
def template(tmp_path: Path) -> Template:
    return load_template(write_template(tmp_path, "t", TEMPLATE))


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_cases(tmp_path: Path, template: Template) -> None:
    path = write(tmp_path, "cases.csv", (
        "id,text,count,expect_contains,expect_regex,expect_json\n"
        "first,hello,,hello,^h,\n"
        "\n"
        ',"two\nlines",5,,,yes\n'
        "third,x,1,,,false\n"
    ))
    dataset = load_dataset(path, template)
    assert [(c.id, c.line, c.values) for c in dataset.cases] == [
        ("first", 2, {"text": "hello"}),
        ("#2", 4, {"text": "two\nlines", "count": 5}),
        ("third", 6, {"text": "x", "count": 1}),
    ]
    assert dataset.cases[0].expect == Expectations(contains=["hello"], regex="^h")
    assert dataset.cases[1].expect == Expectations(json_valid=True)


def test_jsonl_cases(tmp_path: Path, template: Template) -> None:
    path = write(tmp_path, "cases.jsonl", (
        '{"text": "a", "strict": true, "expect_contains": ["a", "b"]}\n'
        "\n"
        '{"id": 7, "text": "b", "count": null, "expect_json": false}\n'
    ))
    dataset = load_dataset(path, template)
    assert [(c.id, c.line, c.values) for c in dataset.cases] == [
        ("#1", 1, {"text": "a", "strict": True}),
        ("7", 3, {"text": "b"}),
    ]
    assert dataset.cases[0].expect.contains == ["a", "b"]


BAD_ROWS = {
    "unknown CSV column": ("x.csv", "text,cuont\na,1\nb,2\n", ["x.csv:1: unknown column 'cuont': template 't' declares text, count, strict"]),
    "missing required variable": ("x.csv", "text,count\na,1\n,2\n", ["x.csv:3: missing required variable 'text'"]),
    "wrong type": ("x.csv", "text,count\na,lots\n", ["x.csv:2: variable 'count' must be a whole number, got 'lots'"]),
    "too many cells": ("x.csv", "text\na,b\n", ["x.csv:2: 2 cells but the header has 1 columns"]),
    "duplicate column": ("x.csv", "text,text\na,b\n", ["x.csv:1: column 'text' appears twice in the header"]),
    "duplicate id": ("x.csv", "id,text\na,1\na,2\n", ["x.csv:3: id 'a' already used on line 2"]),
    "bad regex": ("x.csv", "text,expect_regex\na,(\n", ["x.csv:2: expect_regex '(' is not a valid regular expression"]),
    "bad expect_json": ("x.csv", "text,expect_json\na,perhaps\n", ["x.csv:2: expect_json must be true or false, got 'perhaps'"]),
    "unknown expectation": ("x.jsonl", '{"text": "a", "expect_length": 3}\n', ["x.jsonl:1: unknown expectation 'expect_length'"]),
    "bad JSON line": ("x.jsonl", '{"text": "a"}\n{"text": \n', ["x.jsonl:2: not valid JSON: Expecting value"]),
    "JSON line not an object": ("x.jsonl", '["a"]\n', ["x.jsonl:1: each line must be a JSON object, got list"]),
    "unknown JSONL key": ("x.jsonl", '{"text": "a", "txet": "b"}\n', ["x.jsonl:1: unknown variable 'txet'"]),
    "bad expect_contains": ("x.jsonl", '{"text": "a", "expect_contains": 3}\n', ["x.jsonl:1: expect_contains must be a string or a list"]),
    "empty file": ("x.csv", "text\n", ["x.csv: the dataset has no cases"]),
    "wrong suffix": ("x.txt", "text\n", ["x.txt: a dataset must be a .csv or .jsonl file"]),
    "several problems at once": (
        "x.jsonl", '{"count": 1}\n{oops\n{"text": "ok"}\n',
        ["x.jsonl:2: not valid JSON", "x.jsonl:1: missing required variable 'text'"],
    ),
}


@pytest.mark.parametrize("name, text, expected", BAD_ROWS.values(), ids=BAD_ROWS.keys())
def test_bad_rows_are_named_by_file_and_line(
    tmp_path: Path, template: Template, name: str, text: str, expected: list[str]
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(DatasetError) as caught:
        load_dataset(path, template)
    problems = caught.value.problems
    assert len(problems) == len(expected)
    for problem, fragment in zip(problems, expected, strict=True):
        assert problem.startswith(f"{tmp_path}/{fragment}")


def test_missing_file(tmp_path: Path, template: Template) -> None:
    with pytest.raises(DatasetError, match="cannot read the dataset"):
        load_dataset(tmp_path / "nope.csv", template)


@pytest.mark.parametrize(
    "expect, text, problems",
    [
        (Expectations(contains=["cat"]), "a cat", []),
        (Expectations(contains=["cat", "dog"]), "a cat", ["expected to contain 'dog'"]),
        (Expectations(regex=r"^\d+$"), "x\n42", []),
        (Expectations(regex="(?i)HELLO"), "hello", []),
        (Expectations(regex="bye"), "hello", ["expected to match /bye/"]),
        (Expectations(json_valid=True), '```json\n{"a": 1}\n```', []),
        (Expectations(json_valid=True), "{a: 1}", ["expected JSON: Expecting property name enclosed in double quotes at line 1 column 2"]),
    ],
)
def test_expectations(expect: Expectations, text: str, problems: list[str]) -> None:
    assert expect.check(text) == problems


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x0c", "\x0b", "\x1c"])
def test_unicode_line_separators_do_not_split_rows(tmp_path: Path, template: Template, separator: str) -> None:
    csv_path = write(tmp_path, "cases.csv", f'text,count\n"a{separator}b",1\nplain{separator}cell,2\n')
    assert [(c.line, c.values["text"]) for c in load_dataset(csv_path, template).cases] == [
        (2, f"a{separator}b"), (3, f"plain{separator}cell"),
    ]
    if ord(separator) < 0x20:
        return  # JSON refuses raw control characters in strings anyway
    jsonl_path = write(tmp_path, "cases.jsonl", f'{{"text": "a{separator}b"}}\r\n{{"text": "c"}}\n')
    assert [(c.line, c.values["text"]) for c in load_dataset(jsonl_path, template).cases] == [
        (1, f"a{separator}b"), (2, "c"),
    ]


async def test_reading_off_the_event_loop_gives_the_same_dataset(tmp_path: Path, template: Template) -> None:
    from llmtool.checks import CheckPool, set_pool
    from llmtool.evaluation import load_dataset_async

    pool = CheckPool(size=1)
    previous = set_pool(pool)
    try:
        path = write(tmp_path, "cases.csv", "id,text,count,expect_contains,expect_regex\na,x,2,x,^x\nb,y,,,\n")
        here, there = load_dataset(path, template), await load_dataset_async(path, template)
        assert there == here and pool.started == 1
        bad = write(tmp_path, "bad.csv", "text,count\na,lots\n")
        with pytest.raises(DatasetError) as caught:
            await load_dataset_async(bad, template)
        assert caught.value.problems == [f"{bad}:2: variable 'count' must be a whole number, got 'lots'"]
    finally:
        set_pool(previous)
        await pool.aclose()


# -- assert_* columns ---------------------------------------------------------------------------------
def test_assert_columns_become_the_cases_assertions(tmp_path: Path, template: Template) -> None:
    from llmtool.evaluation.assertions import (
        ContainsAnyAssertion,
        CostAssertion,
        JudgeAssertion,
        LatencyAssertion,
        NotContainsAssertion,
        TokensAssertion,
    )

    csv_path = write(tmp_path, "cases.csv", (
        "id,text,assert_latency_s,assert_first_token_s,assert_tokens,assert_contains_any,assert_judge\n"
        'a,x,5,1.5,20,"good | great",Says "x"\n'
        "b,y,,,,,\n"
    ))
    a, b = load_dataset(csv_path, template).cases
    assert a.values == {"text": "x"}  # assert_* are not variables
    assert a.assertions == [LatencyAssertion(total_s=5, first_token_s=1.5), TokensAssertion(max=20),
                            ContainsAnyAssertion(values=["good", "great"]), JudgeAssertion(rubric='Says "x"')]
    assert b.assertions == []
    jsonl_path = write(tmp_path, "cases.jsonl", (
        '{"text": "a", "assert_cost_usd": 0.01, "assert_not_contains": ["As an AI", "x|y"]}\n'
    ))
    [case] = load_dataset(jsonl_path, template).cases
    assert case.assertions == [CostAssertion(max_usd=0.01), NotContainsAssertion(values=["As an AI", "x|y"])]


def test_bad_assert_cells_are_named_by_file_and_line(tmp_path: Path, template: Template) -> None:
    csv_path = write(tmp_path, "bad.csv", (
        "text,assert_latency_s,assert_tokens,assert_speed\n"
        "a,fast,,\n"
        "b,,2.5,\n"
        "c,,,\n"
    ))
    with pytest.raises(DatasetError) as caught:
        load_dataset(csv_path, template)
    assert caught.value.problems == [
        f"{csv_path}:1: unknown assertion column 'assert_speed' (known: assert_latency_s, assert_first_token_s, "
        "assert_cost_usd, assert_tokens, assert_equals, assert_contains_any, assert_contains_all, "
        "assert_not_contains, assert_judge)",
        f"{csv_path}:2: assert_latency_s must be a number, got 'fast'",
        f"{csv_path}:3: assert_tokens must be a whole number, got 2.5",
    ]
    jsonl_path = write(tmp_path, "bad.jsonl", (
        '{"text": "a"}\n'
        '{"text": "b", "assert_contains_all": [1, 2]}\n'
        '{"text": "c", "assert_equal": "x"}\n'
    ))
    with pytest.raises(DatasetError) as caught:
        load_dataset(jsonl_path, template)
    assert caught.value.problems == [
        f"{jsonl_path}:2: assert_contains_all must be a list of strings",
        f"{jsonl_path}:3: unknown assertion column 'assert_equal' (known: assert_latency_s, assert_first_token_s, "
        "assert_cost_usd, assert_tokens, assert_equals, assert_contains_any, assert_contains_all, "
        "assert_not_contains, assert_judge)",
    ]


async def test_assertions_cross_the_checking_pool(tmp_path: Path, template: Template) -> None:
    from llmtool.checks import CheckPool, set_pool
    from llmtool.evaluation import load_dataset_async

    pool = CheckPool(size=1)
    previous = set_pool(pool)
    try:
        path = write(tmp_path, "cases.csv", "id,text,assert_equals,assert_judge\na,x,yes,Polite\nb,y,,\n")
        here, there = load_dataset(path, template), await load_dataset_async(path, template)
        assert there == here and [len(c.assertions) for c in there.cases] == [2, 0]
    finally:
        set_pool(previous)
        await pool.aclose()
