"""A template's evaluation keys: `assertions:` (checked on every case's run), `grader:` and a pinned
`baseline:`; bad ones are refused at load with the file, the line and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmtool.catalog import Catalog
from llmtool.evaluation.assertions import ContainsAnyAssertion, JudgeAssertion, LatencyAssertion
from llmtool.settings import Settings
from llmtool.templates import TemplateError, load_template
from llmtool.templates.lint import check_prompts
from tests.helpers import write_template

GOOD = """---
model: demo:echo
assertions:
  - {type: latency, total_s: 5}
  - type: contains_any
    values: ["yes", "no"]
  - {type: judge, rubric: 'Says "hi"', min_score: 0.5}
grader: demo:grader
baseline: v1.2-nightly
---
Hi
"""


def test_evaluation_keys_load(tmp_path: Path) -> None:
    template = load_template(write_template(tmp_path, "t", GOOD))
    assert template.assertions == [LatencyAssertion(total_s=5), ContainsAnyAssertion(values=["yes", "no"]),
                                   JudgeAssertion(rubric='Says "hi"', min_score=0.5)]
    assert (template.meta.grader, template.meta.baseline) == ("demo:grader", "v1.2-nightly")
    plain = load_template(write_template(tmp_path, "plain", "Hi\n"))
    assert (plain.assertions, plain.meta.grader, plain.meta.baseline) == ([], None, None)


KINDS = ("latency, cost, tokens, equals, contains, contains_any, contains_all, not_contains, regex, json, judge")


@pytest.mark.parametrize(("front", "line", "message"), [
    ("assertions:\n  - {type: contains, value: x}\n  - type: latency\n    total: 3\n", 5,
     "assertions.1.total: unknown key (allowed: type, total_s, first_token_s)"),
    ("assertions:\n  - {type: latency}\n", 3, "assertions.0: a latency assertion needs total_s or first_token_s"),
    ("assertions:\n  - {type: cost, max_usd: -1}\n", 3,
     "assertions.0.max_usd: Input should be greater than or equal to 0"),
    ("assertions:\n  - {type: speed, max: 1}\n", 3, f"assertions.0: unknown type 'speed' (known: {KINDS})"),
    ("assertions:\n  - {value: x}\n", 3, f"assertions.0: needs a type: one of {KINDS}"),
    ("assertions:\n  - {type: regex, value: '(a)\\1'}\n", 3, "assertions.0: pattern '(a)\\\\1' cannot be used"),
    ("assertions:\n  - {type: contains_any, values: [yes]}\n", 3,
     "assertions.0.values.0: must be text, but YAML read it as the boolean true"),
    ("assertions: {type: json}\n", 2, "assertions: Input should be a valid list"),
    ("grader: gpt\n", 2, "grader: must be written PROVIDER:MODEL (e.g. demo:assistant), got 'gpt'"),
    ("baseline: 'my baseline'\n", 2,
     "baseline: must be an evaluation's name or id: letters, digits, '.', '-' or '_', at most 100"),
    ("variables:\n  assert_tone: {}\n", 2, "variable name 'assert_tone' is reserved"),
])
def test_bad_evaluation_keys_are_refused_with_their_line(tmp_path: Path, front: str, line: int, message: str) -> None:
    path = write_template(tmp_path, "t", f"---\n{front}---\nHi\n")
    with pytest.raises(TemplateError) as caught:
        load_template(path)
    assert caught.value.line == line
    assert message in caught.value.message


def test_prompts_check_names_an_unknown_grader(tmp_path: Path, fast_settings: Settings) -> None:
    path = write_template(tmp_path, "t", (
        "---\nassertions:\n  - {type: judge, rubric: r, model: demo:nobody}\ngrader: demo:nope\n---\nHi\n"))
    problems = [p.message for p in check_prompts(tmp_path, Catalog(fast_settings)).problems]
    assert problems == [
        f"{path}:4: grader: unknown model 'nope' for provider 'demo'" + problems[0].split("'demo'", 1)[1],
        f"{path}:3: grader: unknown model 'nobody' for provider 'demo'" + problems[1].split("'demo'", 1)[1],
    ]
