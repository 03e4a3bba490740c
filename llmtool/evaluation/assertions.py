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
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from llmtool.checks import DEFAULT_TIME_LIMIT, INLINE_PATTERN_CHARS, INLINE_TEXT, CheckError, shared_pool
from llmtool.checks.patterns import PatternError, check_pattern, compile_pattern, is_compiled
from llmtool.events import Failed, Metrics
from llmtool.validation import parse_json_answer

if TYPE_CHECKING:
    from llmtool.evaluation.dataset import Expectations
    from llmtool.service import LLMService
    from llmtool.service.runs import Run
    from llmtool.store import RunOrigin, RunRecord

Verdict = tuple[bool, float, str]  # passed, score, reason: plain, so it crosses the pool's pipe cheaply
ASSERT_COLUMNS = (
    "assert_latency_s", "assert_first_token_s", "assert_cost_usd", "assert_tokens", "assert_equals",
    "assert_contains_any", "assert_contains_all", "assert_not_contains", "assert_judge",
)
_SHOWN = 60  # characters of a value or an answer quoted in a reason


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- about the run --------------------------------------------------------------------------------
class LatencyAssertion(_Spec):
    type: Literal["latency"] = "latency"
    total_s: float | None = Field(None, gt=0, description="The whole run took at most this many seconds.")
    first_token_s: float | None = Field(None, gt=0, description="The first token came within this many seconds.")

    @model_validator(mode="after")
    def _a_bound(self) -> LatencyAssertion:
        if self.total_s is None and self.first_token_s is None:
            raise ValueError("a latency assertion needs total_s or first_token_s")
        return self

    @property
    def label(self) -> str:
        bounds = [f"{name} ≤ {limit:g} s" for name, limit in (("first token", self.first_token_s),
                                                             ("total", self.total_s)) if limit is not None]
        return "latency " + ", ".join(bounds)

    def check(self, metrics: Metrics) -> Verdict:
        found, score = [], 1.0
        for name, limit, actual in (("first token", self.first_token_s, metrics.time_to_first_token),
                                    ("total", self.total_s, metrics.total_time)):
            if limit is None:
                continue
            if actual is None:
                return False, 0.0, f"no {name} time was measured (no text arrived)"
            score = min(score, _ratio(limit, actual))
            found.append(f"{name} {actual:.2f} s {'≤' if actual <= limit else '>'} {limit:g} s")
        return score == 1.0, score, ", ".join(found)


class CostAssertion(_Spec):
    type: Literal["cost"] = "cost"
    max_usd: float = Field(ge=0)

    @property
    def label(self) -> str:
        return f"cost ≤ ${self.max_usd:g}"

    def check(self, metrics: Metrics) -> Verdict:
        cost = metrics.cost_usd
        if cost is None:
            return False, 0.0, "cost unknown (no price for this model), so it cannot be shown to be within the limit"
        score = _ratio(self.max_usd, cost)
        return score == 1.0, score, f"cost ${cost:.6g} {'≤' if cost <= self.max_usd else '>'} ${self.max_usd:g}"


class TokensAssertion(_Spec):
    type: Literal["tokens"] = "tokens"
    max: int = Field(ge=0)
    count: Literal["output", "input", "total"] = "output"

    @property
    def label(self) -> str:
        return f"{self.count} tokens ≤ {self.max}"

    def check(self, metrics: Metrics) -> Verdict:
        output, given = metrics.output_tokens, metrics.input_tokens
        if self.count == "total":
            tokens = None if output is None or given is None else output + given
        else:
            tokens = output if self.count == "output" else given
        if tokens is None:
            return False, 0.0, f"the provider reported no {self.count} token count"
        score = _ratio(self.max, tokens)
        return score == 1.0, score, f"{tokens} {self.count} tokens {'≤' if tokens <= self.max else '>'} {self.max}"


# -- about the text -------------------------------------------------------------------------------
class _TextSpec(_Spec):
    ignore_case: bool = False

    def _fold(self, text: str) -> str:
        return text.casefold() if self.ignore_case else text

    def needles(self) -> list[str]:
        return []

    def cheap_for(self, text: str) -> bool:
        """Whether checking `text` is provably small enough for the event loop."""
        return len(text) <= INLINE_TEXT and sum(map(len, self.needles())) <= INLINE_PATTERN_CHARS


class EqualsAssertion(_TextSpec):
    type: Literal["equals"] = "equals"
    value: str

    @property
    def label(self) -> str:
        return f"equals {_shown(self.value)}"

    def needles(self) -> list[str]:
        return [self.value]

    def verdict(self, text: str) -> Verdict:
        if self._fold(text.strip()) == self._fold(self.value.strip()):
            return True, 1.0, f"the answer is {_shown(self.value)}"
        return False, 0.0, f"expected exactly {_shown(self.value)}, got {_shown(text.strip())}"


class ContainsAssertion(_TextSpec):
    type: Literal["contains"] = "contains"
    value: str = Field(min_length=1)

    @property
    def label(self) -> str:
        return f"contains {_shown(self.value)}"

    def needles(self) -> list[str]:
        return [self.value]

    def verdict(self, text: str) -> Verdict:
        if self._fold(self.value) in self._fold(text):
            return True, 1.0, f"contains {_shown(self.value)}"
        return False, 0.0, f"expected to contain {self.value!r}"  # the wording of expect_contains


class _ValuesSpec(_TextSpec):
    values: list[str] = Field(min_length=1)

    @field_validator("values")
    @classmethod
    def _not_empty(cls, values: list[str]) -> list[str]:
        if any(not v for v in values):
            raise ValueError("a value is empty")
        return values

    def needles(self) -> list[str]:
        return self.values

    def _found(self, text: str) -> list[bool]:
        folded = self._fold(text)
        return [self._fold(value) in folded for value in self.values]


class ContainsAnyAssertion(_ValuesSpec):
    type: Literal["contains_any"] = "contains_any"

    @property
    def label(self) -> str:
        return f"contains any of {_listed(self.values)}"

    def verdict(self, text: str) -> Verdict:
        found = [v for v, hit in zip(self.values, self._found(text), strict=True) if hit]
        if found:
            return True, 1.0, f"contains {_shown(found[0])}"
        return False, 0.0, f"contains none of {_listed(self.values)}"


class ContainsAllAssertion(_ValuesSpec):
    type: Literal["contains_all"] = "contains_all"

    @property
    def label(self) -> str:
        return f"contains all of {_listed(self.values)}"

    def verdict(self, text: str) -> Verdict:
        missing = [v for v, hit in zip(self.values, self._found(text), strict=True) if not hit]
        score = 1 - len(missing) / len(self.values)
        if not missing:
            return True, 1.0, f"contains all {len(self.values)} values"
        return False, score, f"lacks {_listed(missing)} ({len(self.values) - len(missing)} of {len(self.values)} found)"


class NotContainsAssertion(_ValuesSpec):
    type: Literal["not_contains"] = "not_contains"

    @property
    def label(self) -> str:
        return f"contains none of {_listed(self.values)}"

    def verdict(self, text: str) -> Verdict:
        present = [v for v, hit in zip(self.values, self._found(text), strict=True) if hit]
        if not present:
            return True, 1.0, f"contains none of the {len(self.values)} forbidden values"
        return False, 1 - len(present) / len(self.values), f"contains {_listed(present)}, which it must not"


class RegexAssertion(_TextSpec):
    type: Literal["regex"] = "regex"
    value: str

    @model_validator(mode="after")
    def _pattern(self) -> RegexAssertion:
        check_pattern(self._pattern_text())  # a PatternError is a ValueError: refused with its reason
        return self

    @property
    def label(self) -> str:
        return f"matches /{self.value}/"

    def needles(self) -> list[str]:
        return [self.value]

    def cheap_for(self, text: str) -> bool:
        return super().cheap_for(text) and is_compiled(self._pattern_text())

    def _pattern_text(self) -> str:
        return f"(?i){self.value}" if self.ignore_case else self.value

    def verdict(self, text: str) -> Verdict:
        try:
            found = compile_pattern(self._pattern_text()).search(text) is not None
        except PatternError as exc:
            return False, 0.0, str(exc)
        return (True, 1.0, f"matches /{self.value}/") if found else (False, 0.0, f"expected to match /{self.value}/")


class JsonAssertion(_TextSpec):
    type: Literal["json"] = "json"

    @property
    def label(self) -> str:
        return "is JSON"

    def verdict(self, text: str) -> Verdict:
        try:
            parse_json_answer(text)
        except json.JSONDecodeError as exc:
            return False, 0.0, f"expected JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        return True, 1.0, "valid JSON"


class JudgeAssertion(_Spec):
    type: Literal["judge"] = "judge"
    rubric: str = Field(min_length=1, max_length=20_000)
    model: str | None = Field(None, description="The grader, PROVIDER:MODEL; unset: the evaluation's grader.")
    min_score: float | None = Field(None, ge=0, le=1, description="Also required: the grader's score.")
    timeout_s: float = Field(60.0, gt=0, le=3600, description="The grading run's total time limit.")

    @field_validator("rubric")
    @classmethod
    def _rubric(cls, rubric: str) -> str:
        if not rubric.strip():
            raise ValueError("the rubric is empty")
        return rubric

    @property
    def label(self) -> str:
        return f"judge {_shown(self.rubric)}"


TextAssertion = (EqualsAssertion | ContainsAssertion | ContainsAnyAssertion | ContainsAllAssertion
                 | NotContainsAssertion | RegexAssertion | JsonAssertion)
MetricAssertion = LatencyAssertion | CostAssertion | TokensAssertion
AssertionSpec = Annotated[MetricAssertion | TextAssertion | JudgeAssertion, Field(discriminator="type")]
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
        why = f"not checked: the run {outcome.status}" + (f": {outcome.error}" if outcome.error else "")
        return [AssertionResult(type=s.type, label=s.label, passed=False, score=0.0, reason=why) for s in specs]
    metrics = outcome.metrics or Metrics()
    return list(await asyncio.gather(*(
        _one(spec, outcome, metrics, service, origin, grader, time_limit) for spec in specs
    )))


async def _one(spec: AssertionSpec, outcome: RunOutcome, metrics: Metrics, service: LLMService | None,
               origin: RunOrigin | None, grader: str | None, time_limit: float) -> AssertionResult:
    if isinstance(spec, JudgeAssertion):
        from llmtool.evaluation.judge import judge

        return await judge(spec, outcome, service, origin=origin, grader=grader)
    if isinstance(spec, (LatencyAssertion, CostAssertion, TokensAssertion)):
        passed, score, reason = spec.check(metrics)
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


def _ratio(limit: float, actual: float) -> float:
    if actual <= limit:
        return 1.0
    return max(0.0, min(1.0, limit / actual))


def _shown(value: str) -> str:
    return repr(value if len(value) <= _SHOWN else value[:_SHOWN] + "…")


def _listed(values: Sequence[str]) -> str:
    shown = ", ".join(_shown(v) for v in values[:5])
    return shown + (f" and {len(values) - 5} more" if len(values) > 5 else "")


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


def _build(kind: type[_Spec], column: str, **fields: Any) -> Any:
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
