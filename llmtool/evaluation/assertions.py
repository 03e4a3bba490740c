"""Assertions: what an answer and its run must satisfy, each reporting pass, a 0–1 score and a reason.

    specs = parse_assertions(front_matter["assertions"])              # ValueError saying what is wrong
    specs += assertions_from_row(row)                                  # a dataset row's assert_* cells
    results = await run_assertions(specs, run, service, origin=origin) # [AssertionResult], never raises
    grading_cost(results)                                              # what the judges' runs cost

Kinds, as written in a template's front matter (`assertions:`, a list; the same dicts in JSON):

    assertions:
      - {type: latency, total_s: 5, first_token_s: 1.5}   # either or both bounds, seconds
      - {type: cost, max_usd: 0.002}                      # a run of unknown cost fails
      - {type: tokens, max: 400}                          # count: output (default, reasoning included),
                                                          #        input or total
      - {type: equals, value: positive, ignore_case: true}  # the whole answer, ends' whitespace ignored
      - {type: contains, value: Paris}
      - {type: contains_any, values: [positive, negative]}
      - {type: contains_all, values: [Paris, France]}
      - {type: not_contains, values: [As an AI]}
      - {type: regex, value: '^Answer: \\d+$'}           # RE2, as expect_regex (llmtool.checks.patterns)
      - {type: json}
      - {type: judge, rubric: 'Names "Paris" and stays polite', model: openai:gpt-4.1-mini,
         min_score: 0.7, timeout_s: 60}

The text kinds take `ignore_case` (default false). Per dataset row (a CSV column or a JSONL key),
`ASSERT_COLUMNS`: `assert_latency_s` (total), `assert_first_token_s`, `assert_cost_usd`,
`assert_tokens` (output), `assert_equals`, `assert_contains_any`, `assert_contains_all`,
`assert_not_contains` (a JSON list, or values separated by `|`; in JSONL also a list) and
`assert_judge` (the rubric). The dataset's `expect_contains`, `expect_regex` and `expect_json` are the
same checks (`from_expectations`), with the same messages as before.

Scores: 1 for a pass; a bound missed scores limit ÷ actual (2 s allowed, 4 s taken: 0.5);
`contains_all` and `not_contains` score the share of values that behaved; `judge` the grader's score.

Where the work runs: metric kinds are O(1); a text kind runs inline when the answer has at most
`INLINE_TEXT` characters and its values at most `INLINE_PATTERN_CHARS` (a regex compiled already),
otherwise in the checking pool (`llmtool.checks`), stopped after `time_limit` seconds, which fails
that assertion with the reason. `judge` is its own run through `service.start` (`llmtool.evaluation.judge`).
The kinds themselves (one model each, with its check) live in `assertion_kinds`, re-exported here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from llmtool.checks import DEFAULT_TIME_LIMIT, CheckError, shared_pool
from llmtool.evaluation.assertion_kinds import (
    AssertionSpec,
    ContainsAllAssertion,
    ContainsAnyAssertion,
    ContainsAssertion,
    CostAssertion,
    EqualsAssertion,
    JsonAssertion,
    JudgeAssertion,
    LatencyAssertion,
    MetricAssertion,
    NotContainsAssertion,
    RegexAssertion,
    TextAssertion,
    TokensAssertion,
    Verdict,
)
from llmtool.events import Failed, Metrics

if TYPE_CHECKING:
    from llmtool.evaluation.dataset import Expectations
    from llmtool.service import LLMService
    from llmtool.service.runs import Run
    from llmtool.store import RunOrigin, RunRecord

__all__ = [
    "ASSERT_COLUMNS", "AssertionResult", "AssertionSpec", "ContainsAllAssertion", "ContainsAnyAssertion",
    "ContainsAssertion", "CostAssertion", "EqualsAssertion", "JsonAssertion", "JudgeAssertion", "LatencyAssertion",
    "MetricAssertion", "NotContainsAssertion", "RegexAssertion", "RunOutcome", "TextAssertion", "TokensAssertion",
    "Verdict", "assertions_from_row", "failed_reasons", "from_expectations", "grading_cost", "parse_assertions",
    "run_assertions", "split_values", "text_verdict",
]
ASSERT_COLUMNS = (
    "assert_latency_s", "assert_first_token_s", "assert_cost_usd", "assert_tokens", "assert_equals",
    "assert_contains_any", "assert_contains_all", "assert_not_contains", "assert_judge",
)


_specs: TypeAdapter[list[AssertionSpec]] = TypeAdapter(list[AssertionSpec])


class AssertionResult(BaseModel):
    """One assertion's outcome on one answer."""

    model_config = ConfigDict(frozen=True)

    type: str
    label: str = Field(description="What was asserted, for a person: 'latency total ≤ 2 s'.")
    passed: bool
    score: float = Field(ge=0, le=1)
    reason: str
    run_id: str | None = Field(None, description="judge: the grader's run.")
    model: str | None = Field(None, description="judge: the grader.")
    cost_usd: float | None = Field(None, description="judge: what grading cost; None: unknown or no run.")


@dataclass(frozen=True)
class RunOutcome:
    """What assertions look at: the answer, how the run ended, its metrics, and what was asked."""

    text: str
    status: str = "completed"
    metrics: Metrics | None = None
    prompt: str = ""
    run_id: str | None = None
    error: str | None = None

    @classmethod
    def from_run(cls, run: Run) -> RunOutcome:
        terminal = run.terminal
        return cls(
            text=terminal.text if terminal is not None else run.text_so_far(), status=run.status,
            metrics=terminal.metrics if terminal is not None else None,
            prompt=run.request.messages[-1].content, run_id=run.id,
            error=terminal.message if isinstance(terminal, Failed) else None,
        )

    @classmethod
    def from_record(cls, record: RunRecord) -> RunOutcome:
        return cls(text=record.text, status=record.status, metrics=record.metrics, prompt=record.prompt,
                   run_id=record.id, error=record.error_message)


def parse_assertions(data: Any) -> list[AssertionSpec]:
    """The specs of a front matter's `assertions:` list, or a ValueError saying what is wrong."""
    if data is None:
        return []
    try:
        return _specs.validate_python(data)
    except ValidationError as exc:
        raise ValueError(_describe(exc)) from None


def from_expectations(expect: Expectations) -> list[AssertionSpec]:
    """A dataset case's expect_* columns as assertions (same checks, same messages)."""
    specs: list[AssertionSpec] = [ContainsAssertion(value=value) for value in expect.contains if value]
    if expect.regex is not None:
        specs.append(RegexAssertion(value=expect.regex))
    if expect.json_valid:
        specs.append(JsonAssertion())
    return specs


def assertions_from_row(row: Mapping[str, Any]) -> list[AssertionSpec]:
    """The assertions of one dataset row's `assert_*` cells (CSV strings or JSONL values; None or an
    absent key: not given), or a ValueError naming the column and what is wrong."""
    specs: list[AssertionSpec] = []
    total, first = _number(row, "assert_latency_s"), _number(row, "assert_first_token_s")
    if total is not None or first is not None:
        specs.append(_build(LatencyAssertion, "assert_latency_s", total_s=total, first_token_s=first))
    if (cost := _number(row, "assert_cost_usd")) is not None:
        specs.append(_build(CostAssertion, "assert_cost_usd", max_usd=cost))
    if (tokens := _number(row, "assert_tokens")) is not None:
        if tokens != int(tokens):
            raise ValueError(f"assert_tokens must be a whole number, got {tokens:g}")
        specs.append(_build(TokensAssertion, "assert_tokens", max=int(tokens)))
    if (value := row.get("assert_equals")) is not None:
        specs.append(_build(EqualsAssertion, "assert_equals", value=str(value)))
    for column, kind in (("assert_contains_any", ContainsAnyAssertion), ("assert_contains_all", ContainsAllAssertion),
                         ("assert_not_contains", NotContainsAssertion)):
        if (values := row.get(column)) is not None:
            specs.append(_build(kind, column, values=split_values(column, values)))
    if (rubric := row.get("assert_judge")) is not None:
        specs.append(_build(JudgeAssertion, "assert_judge", rubric=str(rubric)))
    return specs


def split_values(column: str, cell: Any) -> list[str]:
    """A list cell: a JSON list of strings (a CSV cell starting with `[`), or values separated by `|`."""
    if isinstance(cell, str) and cell.lstrip().startswith("["):
        try:
            cell = json.loads(cell)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{column} is not a valid JSON list: {exc.msg} (column {exc.colno})") from None
    if isinstance(cell, list):
        if not all(isinstance(v, str) for v in cell):
            raise ValueError(f"{column} must be a list of strings")
        values = [v for v in cell if v]
    elif isinstance(cell, str):
        values = [v.strip() for v in cell.split("|") if v.strip()]
    else:
        raise ValueError(f"{column} must be a list of strings or values separated by |")
    if not values:
        raise ValueError(f"{column} has no values")
    return values


async def run_assertions(
    specs: Sequence[AssertionSpec],
    run_result: RunOutcome | Run | RunRecord,
    service: LLMService | None = None,
    *,
    origin: RunOrigin | None = None,
    grader: str | None = None,
    time_limit: float = DEFAULT_TIME_LIMIT,
) -> list[AssertionResult]:
    """Each spec's result, in order; never raises (cancelling it cancels the graders' runs).

    A run that did not complete fails every assertion ("not checked: the run failed: …") and starts
    no grader. `service` runs the judges (without one they fail saying so); `origin` is the
    evaluation's (user, evaluation_id), kept on the graders' runs with source "grading"; `grader`: the
    model of judges that name none (default: `judge.default_grader`). `time_limit`: seconds for a
    text check that goes to the checking pool."""
    outcome = run_result if isinstance(run_result, RunOutcome) else _outcome(run_result)
    if outcome.status != "completed":
        how = "has not ended" if outcome.status == "running" else outcome.status
        why = f"not checked: the run {how}" + (f": {outcome.error}" if outcome.error else "")
        return [AssertionResult(type=s.type, label=s.label, passed=False, score=0.0, reason=why) for s in specs]
    return list(await asyncio.gather(*(
        _one(spec, outcome, outcome.metrics, service, origin, grader, time_limit) for spec in specs
    )))


async def _one(spec: AssertionSpec, outcome: RunOutcome, metrics: Metrics | None, service: LLMService | None,
               origin: RunOrigin | None, grader: str | None, time_limit: float) -> AssertionResult:
    if isinstance(spec, JudgeAssertion):
        from llmtool.evaluation.judge import judge

        return await judge(spec, outcome, service, origin=origin, grader=grader)
    if isinstance(spec, (LatencyAssertion, CostAssertion, TokensAssertion)):
        passed, score, reason = (False, 0.0, "the run's measurements are not known") if metrics is None \
            else spec.check(metrics)
    else:
        passed, score, reason = await text_verdict(spec, outcome.text, time_limit=time_limit)
    return AssertionResult(type=spec.type, label=spec.label, passed=passed, score=score, reason=reason)


async def text_verdict(spec: TextAssertion, text: str, *, time_limit: float = DEFAULT_TIME_LIMIT) -> Verdict:
    """One text assertion on `text`: inline when provably small, else in the checking pool."""
    if spec.cheap_for(text):
        return spec.verdict(text)
    try:
        verdict: Verdict = await shared_pool().run("check_assertion", spec, text, time_limit=time_limit,
                                                   what=f"the assertion {spec.label}")
    except CheckError as stopped:
        return False, 0.0, stopped.message
    return verdict


def grading_cost(results: Sequence[AssertionResult]) -> float | None:
    """What the judges' runs cost together: 0.0 without judges, None when any cost is unknown."""
    graded = [r for r in results if r.run_id is not None]
    if any(r.cost_usd is None for r in graded):
        return None
    return sum(r.cost_usd or 0.0 for r in graded)


def failed_reasons(results: Sequence[AssertionResult]) -> list[str]:
    """'label: reason' of each failed assertion: a cell's problems."""
    return [f"{r.label}: {r.reason}" for r in results if not r.passed]


def _outcome(run_result: Run | RunRecord) -> RunOutcome:
    from llmtool.store import RunRecord

    return RunOutcome.from_record(run_result) if isinstance(run_result, RunRecord) else RunOutcome.from_run(run_result)


def _number(row: Mapping[str, Any], column: str) -> float | None:
    value = row.get(column)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError(f"{column} must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{column} must be a number, got {value!r}") from None


def _build(kind: type[BaseModel], column: str, **fields: Any) -> Any:
    try:
        return kind(**fields)
    except ValidationError as exc:
        raise ValueError(f"{column}: {_describe(exc)}") from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)
