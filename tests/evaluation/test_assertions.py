"""Assertions beyond text: each kind's pass, score and reason; specs from front matter and dataset rows;
text checks too long for the event loop go to the checking pool; `judge` on the offline demo grader
and on the loopback server (a grader that fails, times out or answers garbage fails its assertion
with that reason, the others still run)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from llmtool.checks import INLINE_TEXT, CheckPool, set_pool
from llmtool.evaluation.assertions import (
    ASSERT_COLUMNS,
    AssertionResult,
    ContainsAllAssertion,
    ContainsAnyAssertion,
    ContainsAssertion,
    CostAssertion,
    EqualsAssertion,
    JsonAssertion,
    JudgeAssertion,
    LatencyAssertion,
    NotContainsAssertion,
    RegexAssertion,
    RunOutcome,
    TokensAssertion,
    assertions_from_row,
    failed_reasons,
    from_expectations,
    grading_cost,
    parse_assertions,
    run_assertions,
    split_values,
)
from llmtool.evaluation.dataset import Expectations
from llmtool.evaluation.judge import DEMO_GRADER, GRADER_SYSTEM, default_grader, grading_prompt, parse_verdict
from llmtool.events import Metrics
from llmtool.loopback import LoopbackServer, Scenario
from llmtool.providers.demo_grader import quoted_terms, verdict
from llmtool.service import LLMService, RunRequest
from llmtool.settings import Settings
from llmtool.store import RunOrigin, open_store
from tests.providers.conftest import service_for

METRICS = Metrics(time_to_first_token=0.5, total_time=4.0, input_tokens=100, output_tokens=300, cost_usd=0.002)
ANSWER = "Paris is the capital of France."


def outcome(text: str = ANSWER, metrics: Metrics = METRICS, **fields: object) -> RunOutcome:
    return RunOutcome(text=text, metrics=metrics, prompt="What is the capital of France?", **fields)  # type: ignore[arg-type]


async def check(spec: object, text: str = ANSWER, metrics: Metrics = METRICS) -> AssertionResult:
    [result] = await run_assertions([spec], outcome(text, metrics))  # type: ignore[list-item]
    return result


# -- about the run ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("spec", "passed", "score", "reason"), [
    (LatencyAssertion(total_s=5), True, 1.0, "total 4.00 s ≤ 5 s"),
    (LatencyAssertion(total_s=2), False, 0.5, "total 4.00 s > 2 s"),
    (LatencyAssertion(first_token_s=1, total_s=8), True, 1.0, "first token 0.50 s ≤ 1 s, total 4.00 s ≤ 8 s"),
    (LatencyAssertion(first_token_s=0.25, total_s=8), False, 0.5, "first token 0.50 s > 0.25 s, total 4.00 s ≤ 8 s"),
    (CostAssertion(max_usd=0.01), True, 1.0, "cost $0.002 ≤ $0.01"),
    (CostAssertion(max_usd=0.001), False, 0.5, "cost $0.002 > $0.001"),
    (TokensAssertion(max=300), True, 1.0, "300 output tokens ≤ 300"),
    (TokensAssertion(max=150), False, 0.5, "300 output tokens > 150"),
    (TokensAssertion(max=400, count="total"), True, 1.0, "400 total tokens ≤ 400"),
    (TokensAssertion(max=50, count="input"), False, 0.5, "100 input tokens > 50"),
])
async def test_metric_assertions(spec: object, passed: bool, score: float, reason: str) -> None:
    result = await check(spec)
    assert (result.passed, result.score, result.reason) == (passed, score, reason)


async def test_unknown_cost_and_missing_measures_fail_with_that_reason() -> None:
    unknown = Metrics(total_time=1.0, cost_usd=None)
    cost = await check(CostAssertion(max_usd=1), metrics=unknown)
    assert not cost.passed and cost.score == 0 and cost.reason.startswith("cost unknown")
    first = await check(LatencyAssertion(first_token_s=1), metrics=unknown)
    assert not first.passed and "no first token time" in first.reason
    tokens = await check(TokensAssertion(max=10), metrics=unknown)
    assert not tokens.passed and tokens.reason == "the provider reported no output token count"
    [unmeasured] = await run_assertions([LatencyAssertion(total_s=5)], RunOutcome(text="x"))
    assert (unmeasured.passed, unmeasured.reason) == (False, "the run's measurements are not known")


# -- about the text -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("spec", "passed", "score", "reason"), [
    (EqualsAssertion(value=ANSWER), True, 1.0, f"the answer is {ANSWER!r}"),
    (EqualsAssertion(value="paris is the capital of france."), False, 0.0,
     f"expected exactly 'paris is the capital of france.', got {ANSWER!r}"),
    (EqualsAssertion(value="  PARIS IS THE CAPITAL OF FRANCE.\n", ignore_case=True), True, 1.0, None),
    (ContainsAssertion(value="Paris"), True, 1.0, "contains 'Paris'"),
    (ContainsAssertion(value="Berlin"), False, 0.0, "expected to contain 'Berlin'"),
    (ContainsAnyAssertion(values=["Berlin", "France"]), True, 1.0, "contains 'France'"),
    (ContainsAnyAssertion(values=["Berlin", "Rome"]), False, 0.0, "contains none of 'Berlin', 'Rome'"),
    (ContainsAnyAssertion(values=["paris"], ignore_case=True), True, 1.0, "contains 'paris'"),
    (ContainsAllAssertion(values=["Paris", "France"]), True, 1.0, "contains all 2 values"),
    (ContainsAllAssertion(values=["Paris", "Berlin", "Rome", "France"]), False, 0.5,
     "lacks 'Berlin', 'Rome' (2 of 4 found)"),
    (NotContainsAssertion(values=["Berlin"]), True, 1.0, "contains none of the 1 forbidden values"),
    (NotContainsAssertion(values=["Berlin", "Paris"]), False, 0.5, "contains 'Paris', which it must not"),
    (RegexAssertion(value=r"^Paris\b"), True, 1.0, r"matches /^Paris\b/"),
    (RegexAssertion(value=r"^paris"), False, 0.0, "expected to match /^paris/"),
    (RegexAssertion(value=r"^paris", ignore_case=True), True, 1.0, None),
    (JsonAssertion(), False, 0.0, "expected JSON: Expecting value at line 1 column 1"),
])
async def test_text_assertions(spec: object, passed: bool, score: float, reason: str | None) -> None:
    result = await check(spec)
    assert (result.passed, result.score) == (passed, score)
    if reason is not None:
        assert result.reason == reason


async def test_json_accepts_a_fenced_answer() -> None:
    assert (await check(JsonAssertion(), text='```json\n{"a": 1}\n```')).passed


@pytest.fixture
async def pool() -> AsyncIterator[CheckPool]:
    pool = CheckPool(size=1)
    previous = set_pool(pool)
    try:
        yield pool
    finally:
        set_pool(previous)
        await pool.aclose()


async def test_long_answers_are_checked_in_the_pool_and_a_slow_check_fails_its_assertion(pool: CheckPool) -> None:
    long = "x" * (INLINE_TEXT * 4) + " Paris"
    specs = [ContainsAssertion(value="Paris"), NotContainsAssertion(values=["Rome"]), JsonAssertion()]
    results = await run_assertions(specs, outcome(long))
    assert [r.passed for r in results] == [True, True, False]
    assert pool.workers, "the long answer went to a checking process"

    # A check that cannot finish in time fails its assertion, naming it; the others are unaffected.
    huge = "a" * 300_000
    results = await run_assertions([ContainsAllAssertion(values=["b" * 1000, "a"]), LatencyAssertion(total_s=9)],
                                   outcome(huge), time_limit=0.000_001)
    assert not results[0].passed
    assert results[0].reason.startswith("the check of the assertion contains all of")
    assert results[0].reason.endswith("took longer than 1e-06 s and was stopped")
    assert results[1].passed


async def test_a_run_that_did_not_complete_fails_every_assertion_without_grading() -> None:
    failed = RunOutcome(text="partial", status="failed", error="the provider is down", metrics=METRICS)
    results = await run_assertions([ContainsAssertion(value="partial"), JudgeAssertion(rubric="x")], failed)
    assert [(r.passed, r.reason) for r in results] == [(False, "not checked: the run failed: the provider is down")] * 2
    assert all(r.run_id is None for r in results)
    [running] = await run_assertions([ContainsAssertion(value="x")], RunOutcome(text="x", status="running"))
    assert running.reason == "not checked: the run has not ended"


# -- specs as written ---------------------------------------------------------------------------------
def test_front_matter_specs() -> None:
    specs = parse_assertions([
        {"type": "latency", "total_s": 5}, {"type": "cost", "max_usd": 0.01}, {"type": "tokens", "max": 10},
        {"type": "contains_any", "values": ["a", "b"]}, {"type": "judge", "rubric": 'says "hi"', "min_score": 0.5},
    ])
    assert [s.type for s in specs] == ["latency", "cost", "tokens", "contains_any", "judge"]
    assert parse_assertions(None) == []
    for bad, message in [
        ([{"type": "latency"}], "needs total_s or first_token_s"),
        ([{"type": "speed", "max": 1}], "does not match any of the expected tags"),
        ([{"type": "cost", "max_usd": -1}], "max_usd"),
        ([{"type": "regex", "value": "(a)\\1"}], "backreference"),
        ([{"type": "contains_any", "values": []}], "values"),
        ([{"type": "judge", "rubric": "  "}], "the rubric is empty"),
        ([{"type": "equals", "value": "x", "colour": "red"}], "colour"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_assertions(bad)


def test_dataset_row_columns() -> None:
    row = {
        "assert_latency_s": "5", "assert_first_token_s": "1.5", "assert_cost_usd": "0.01", "assert_tokens": "200",
        "assert_equals": "positive", "assert_contains_any": "good | great", "assert_contains_all": '["a", "b"]',
        "assert_not_contains": "As an AI", "assert_judge": 'Mentions "refund"', "text": "ignored",
    }
    specs = assertions_from_row(row)
    assert set(ASSERT_COLUMNS) == {k for k in row if k.startswith("assert_")}
    assert specs == [
        LatencyAssertion(total_s=5, first_token_s=1.5), CostAssertion(max_usd=0.01), TokensAssertion(max=200),
        EqualsAssertion(value="positive"), ContainsAnyAssertion(values=["good", "great"]),
        ContainsAllAssertion(values=["a", "b"]), NotContainsAssertion(values=["As an AI"]),
        JudgeAssertion(rubric='Mentions "refund"'),
    ]
    assert assertions_from_row({"assert_cost_usd": None, "assert_latency_s": " "}) == []
    # JSONL gives typed values
    assert assertions_from_row({"assert_tokens": 3, "assert_contains_any": ["x|y"]}) == [
        TokensAssertion(max=3), ContainsAnyAssertion(values=["x|y"])]
    for bad, message in [
        ({"assert_latency_s": "fast"}, "assert_latency_s must be a number, got 'fast'"),
        ({"assert_latency_s": "0"}, "assert_latency_s: total_s"),
        ({"assert_tokens": "2.5"}, "assert_tokens must be a whole number"),
        ({"assert_contains_any": "[1, 2]"}, "must be a list of strings"),
        ({"assert_contains_any": "[oops"}, "not a valid JSON list"),
        ({"assert_not_contains": " | "}, "has no values"),
        ({"assert_cost_usd": True}, "must be a number"),
    ]:
        with pytest.raises(ValueError, match=message):
            assertions_from_row(bad)
    assert split_values("c", "a|b||c ") == ["a", "b", "c"]


async def test_expectations_keep_their_messages() -> None:
    expect = Expectations(contains=["Paris", "Berlin"], regex="^Rome", json_valid=True)
    specs = from_expectations(expect)
    results = await run_assertions(specs, outcome())
    assert [r.reason for r in results if not r.passed] == expect.check(ANSWER)
    assert failed_reasons(results)[0] == "contains 'Berlin': expected to contain 'Berlin'"


# -- judge: the offline grader ------------------------------------------------------------------------
def test_demo_grader_verdicts() -> None:
    prompt = grading_prompt('Names "Paris" and “France”, and is polite', ANSWER, "capital?")
    assert verdict(prompt) == (True, 1.0, "the answer contains all 2 quoted terms of the rubric")
    assert verdict(grading_prompt('"paris", "Rome", "Oslo", "france"', ANSWER)) == (
        False, 0.5, 'the answer lacks "Rome", "Oslo" (2 of 4 quoted terms found)')
    assert verdict(grading_prompt("Any answer", ANSWER))[0] is True
    assert verdict(grading_prompt("Any answer", "")) == (False, 0.0, "the answer is empty")
    assert verdict("no tags here")[0] is False
    # the answer is everything up to the last </answer>, whatever it contains
    assert verdict(grading_prompt('"ok"', "x </answer> ok"))[0] is True
    assert quoted_terms('a "b" c "b" d "e') == ["b"]


@pytest.fixture
async def demo_service(fast_settings: Settings) -> AsyncIterator[LLMService]:
    service = LLMService(fast_settings)
    yield service
    await service.aclose()


async def test_judge_on_the_demo_grader(demo_service: LLMService) -> None:
    assert default_grader(demo_service) == DEMO_GRADER
    specs = [JudgeAssertion(rubric='Names "Paris" and "France"'), JudgeAssertion(rubric='Names "Berlin"'),
             JudgeAssertion(rubric='"Paris" "Rome"', min_score=0.4), JudgeAssertion(rubric='"Paris" "Rome"'),
             ContainsAssertion(value="Paris")]
    results = await run_assertions(specs, outcome(), demo_service, origin=RunOrigin(user="ann", evaluation_id="e1"))
    assert [(r.passed, r.score) for r in results] == [(True, 1.0), (False, 0.0), (False, 0.5), (False, 0.5),
                                                      (True, 1.0)]
    assert results[1].reason == 'the answer lacks "Berlin" (0 of 1 quoted terms found)'
    assert results[2].reason.startswith("the answer lacks")  # the grader failed it; min_score not the reason
    assert {r.model for r in results[:4]} == {DEMO_GRADER}
    assert grading_cost(results) == 0.0
    graders = [demo_service.get(r.run_id) for r in results[:4] if r.run_id]
    assert len(graders) == 4
    assert all(run is not None and run.request.system == GRADER_SYSTEM for run in graders)


async def test_a_grader_that_answers_no_verdict(demo_service: LLMService) -> None:
    result = await check_judge(demo_service, JudgeAssertion(rubric="any", model="demo:echo"))
    assert not result.passed and "not a JSON verdict" in result.reason  # echo answers the prompt back
    with pytest.raises(ValueError):
        JudgeAssertion(rubric="x", min_score=2)
    parsed = parse_verdict('Sure! {"pass": true, "score": 0.3, "reason": "thin"} Hope that helps.')
    assert not isinstance(parsed, str) and (parsed.passed, parsed.score) == (True, 0.3)


async def check_judge(service: LLMService, spec: JudgeAssertion, **fields: object) -> AssertionResult:
    [result] = await run_assertions([spec], outcome(**fields), service)  # type: ignore[arg-type]
    return result


@pytest.mark.parametrize(("answer", "reason"), [
    ("", "the grader answered nothing"),
    ("I think it passes.", "the grader's answer is not a JSON verdict: 'I think it passes.'"),
    ("[true, 1]", "the grader's answer is not a JSON verdict: '[true, 1]'"),
    ('{"score": 1}', "the grader's verdict is not usable: pass: Field required"),
    ('{"pass": true, "score": 7}', "the grader's verdict is not usable: score: Input should be less than or equal to 1"),
    ("{" * 50_000, "the grader's answer (50,000 characters) is not a JSON verdict"),
])
def test_garbage_verdicts(answer: str, reason: str) -> None:
    assert parse_verdict(answer) == reason


async def test_judge_without_a_service_or_with_an_unknown_grader() -> None:
    [result] = await run_assertions([JudgeAssertion(rubric="x")], outcome())
    assert not result.passed and result.reason == "no service to run the grader with"


# -- judge: the loopback server -----------------------------------------------------------------------
GRADER = "openai:gpt-4.1-mini"  # priced in models.toml: its grading has a cost


@pytest.fixture
async def loopback_service(loopback: LoopbackServer) -> AsyncIterator[LLMService]:
    loopback.reset()
    service = service_for(loopback)
    yield service
    await service.aclose()


def answering(text: str) -> Scenario:
    return Scenario(text=text, tokens_per_second=10_000)


async def test_judge_on_a_real_wire_with_its_cost_and_the_prompt_sent(
    loopback: LoopbackServer, loopback_service: LLMService,
) -> None:
    loopback.enqueue(answering('```json\n{"pass": true, "score": 0.8, "reason": "names the city"}\n```'))
    result = await check_judge(loopback_service, JudgeAssertion(rubric="Names the capital", model=GRADER))
    assert (result.passed, result.score, result.reason, result.model) == (True, 0.8, "names the city", GRADER)
    assert result.cost_usd is not None and result.cost_usd > 0
    assert grading_cost([result]) == result.cost_usd
    [request] = loopback.requests
    sent = json.dumps(request.body)
    assert "Names the capital" in sent and "Paris is the capital of France." in sent and "strict grader" in sent

    # a passing verdict below min_score fails; a verdict without a score scores its pass
    loopback.enqueue(answering('{"pass": true, "score": 0.3}'), answering('{"pass": true}'))
    below = await check_judge(loopback_service, JudgeAssertion(rubric="r", model=GRADER, min_score=0.5))
    assert (below.passed, below.score, below.reason) == (False, 0.3, "score 0.3 is below 0.5: passed without a reason")
    bare = await check_judge(loopback_service, JudgeAssertion(rubric="r", model=GRADER))
    assert (bare.passed, bare.score) == (True, 1.0)


async def test_graders_that_fail_time_out_or_answer_garbage_fail_their_assertions(
    loopback: LoopbackServer, loopback_service: LLMService,
) -> None:
    loopback.enqueue(
        Scenario.preset("unauthorized"),
        Scenario(kind="stall_before_first_token", stall_seconds=5),
        answering("Looks good to me."),
    )
    specs = [JudgeAssertion(rubric="r1", model=GRADER), JudgeAssertion(rubric="r2", model=GRADER, timeout_s=0.5),
             JudgeAssertion(rubric="r3", model=GRADER), ContainsAssertion(value="Paris")]
    # one at a time, so each grader takes the scenario meant for it
    results = [r for spec in specs for r in await run_assertions([spec], outcome(), loopback_service)]
    unauthorized, timed_out, garbage, contains = results
    assert not unauthorized.passed and unauthorized.reason.startswith(f"the grader {GRADER} failed:")
    assert not timed_out.passed
    assert timed_out.reason == f"the grader {GRADER} failed: the run took longer than its 0.5 s limit"
    assert not garbage.passed and garbage.reason == "the grader's answer is not a JSON verdict: 'Looks good to me.'"
    assert contains.passed
    assert all(r.run_id for r in (unauthorized, timed_out, garbage))


async def test_grading_runs_are_stored_as_grading(tmp_path, loopback: LoopbackServer) -> None:  # type: ignore[no-untyped-def]
    loopback.reset()
    service = service_for(loopback)
    await service.attach_store(await open_store(f"sqlite+aiosqlite:///{tmp_path / 'runs.db'}"))
    try:
        loopback.enqueue(answering('{"pass": false, "score": 0.2, "reason": "vague"}'))
        answer = service.start(RunRequest(model="demo:echo", prompt="Paris?"))
        await answer.wait()
        [result] = await run_assertions([JudgeAssertion(rubric="r", model=GRADER)], answer, service,
                                        origin=RunOrigin(user="ann", evaluation_id="ev1"))
        assert (result.passed, result.score, result.reason) == (False, 0.2, "vague")
        assert service.recorder is not None
        await service.recorder.flush()
        assert result.run_id is not None
        record = await service.record(result.run_id)
        assert record is not None
        assert (record.source, record.user, record.evaluation_id, record.model) == ("grading", "ann", "ev1", GRADER)
        assert record.metrics is not None and record.metrics.cost_usd == result.cost_usd
    finally:
        await service.aclose()
