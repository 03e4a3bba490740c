"""Checks of untrusted text that cannot freeze the server: RE2 patterns, a process pool, time limits.

    problems = await check_text(rules, text, time_limit=2.0)          # a completed answer's rules
    problems = await check_expectations(case.expect, text)            # a dataset case's expectations
    await aclose()                                                    # at shutdown: the pool's workers end

`check_text` returns the problems (sentences, [] when it passed), like `ValidationRules.check`. A
check that runs past `time_limit` is stopped and adds "the check of the python rule m:f took longer
than 2 s and was stopped" (naming what ran) to the problems found before it; a check whose process
died adds "the check of … stopped unexpectedly". Neither raises.

What runs where:
- inline, on the event loop, when it is provably small: length rules (O(1)), and patterns, words,
  substrings and JSON parsing of a text of at most `INLINE_TEXT` characters against at most
  `INLINE_PATTERN_CHARS` characters of patterns/words, every pattern compiled already (RE2 search is
  linear, the words are escaped literals, JSON parsing is linear: well under a millisecond);
- in the pool (`llmtool.checks.pool`) otherwise, and always for a JSON Schema (its keywords can be
  quadratic: `uniqueItems`, nested `anyOf`) and for a `python` rule (any code).

Patterns are compiled with RE2 (`llmtool.checks.patterns`); JSON Schemas validate with RE2 patterns
(`llmtool.checks.schema`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmtool.checks.patterns import PatternError, check_pattern, compile_pattern, is_compiled
from llmtool.checks.pool import (
    DEFAULT_TIME_LIMIT,
    POOL_SIZE,
    CheckError,
    CheckFailed,
    CheckPool,
    CheckTimedOut,
    aclose,
    set_pool,
    shared_pool,
)

if TYPE_CHECKING:
    from llmtool.evaluation.dataset import Expectations
    from llmtool.validation import ValidationRules

INLINE_TEXT = 4096  # characters of answer checked on the event loop when the rules are cheap
INLINE_PATTERN_CHARS = 1024  # characters of patterns and words, all together

__all__ = [
    "DEFAULT_TIME_LIMIT",
    "INLINE_PATTERN_CHARS",
    "INLINE_TEXT",
    "POOL_SIZE",
    "CheckError",
    "CheckFailed",
    "CheckPool",
    "CheckTimedOut",
    "PatternError",
    "aclose",
    "check_expectations",
    "check_pattern",
    "check_text",
    "compile_pattern",
    "set_pool",
    "shared_pool",
]


async def check_text(rules: ValidationRules, text: str, *, time_limit: float = DEFAULT_TIME_LIMIT) -> list[str]:
    """Every problem with a completed answer under `rules` ([] when it passed); never raises for a
    slow or crashing check: that becomes a problem naming it."""
    if rules.rule_count == 0:
        return []
    patterns = [*rules.required_patterns, *rules.forbidden_patterns]
    if rules.only_length or (
        rules.python is None and rules.json_schema is None
        and _small(text, [*patterns, *rules.forbidden_words]) and all(map(is_compiled, patterns))
    ):
        return rules.check(text)
    return await _in_pool("check_text", rules, text, time_limit=time_limit)


async def check_expectations(expect: Expectations, text: str, *, time_limit: float = DEFAULT_TIME_LIMIT
                             ) -> list[str]:
    """Every expectation of a dataset case that `text` does not meet ([] when it met them all)."""
    if expect.count == 0:
        return []
    regex = [] if expect.regex is None else [expect.regex]
    if _small(text, [*expect.contains, *regex]) and all(map(is_compiled, regex)):
        return expect.check(text)
    return await _in_pool("check_expectations", expect, text, time_limit=time_limit)


def _small(text: str, patterns: list[str]) -> bool:
    return len(text) <= INLINE_TEXT and sum(map(len, patterns)) <= INLINE_PATTERN_CHARS


async def _in_pool(task: str, subject: object, text: str, *, time_limit: float) -> list[str]:
    try:
        problems: list[str] = await shared_pool().run(task, subject, text, time_limit=time_limit)
    except CheckError as stopped:
        return [*stopped.problems, stopped.message]
    return problems
