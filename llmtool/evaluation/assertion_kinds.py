"""The assertion kinds: one frozen pydantic model per kind, with its check (see `assertions`).

Metric kinds check a run's `Metrics` (`check`); text kinds check the answer (`verdict`), on the
event loop when `cheap_for(text)`, else in a checking process (`llmtool.checks.tasks.check_assertion`
unpickles them there: this module stays light to import). Each returns a `Verdict`:
(passed, score 0–1, reason).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llmtool.checks import INLINE_PATTERN_CHARS, INLINE_TEXT
from llmtool.checks.patterns import PatternError, check_pattern, compile_pattern, is_compiled
from llmtool.events import Metrics
from llmtool.validation import parse_json_answer

Verdict = tuple[bool, float, str]  # passed, score, reason: plain, so it crosses the pool's pipe cheaply
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


def _ratio(limit: float, actual: float) -> float:
    if actual <= limit:
        return 1.0
    return max(0.0, min(1.0, limit / actual))


def _shown(value: str) -> str:
    return repr(value if len(value) <= _SHOWN else value[:_SHOWN] + "…")


def _listed(values: Sequence[str]) -> str:
    shown = ", ".join(_shown(v) for v in values[:5])
    return shown + (f" and {len(values) - 5} more" if len(values) > 5 else "")
