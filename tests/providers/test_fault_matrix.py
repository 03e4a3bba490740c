"""Every fault × the three wire protocols, through the real SDKs and the whole service.

Each case asserts the exact event sequence, the text the user got, and what the server saw.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

import pytest

from llmtool.events import Failed, Retrying, TextDelta
from llmtool.loopback import DEFAULT_TEXT, Scenario, split_tokens
from tests.providers.conftest import PROTOCOL_MODELS, service_at, service_for

TOKENS = split_tokens(DEFAULT_TEXT)
PARTIAL = "".join(TOKENS[:3])
COMPLETED_TAIL = ["usage", "validated", "completed"]


@dataclass
class Case:
    scenarios: list[Scenario]
    kinds: list[str]  # event kinds with runs of "text" collapsed to one
    requests: int
    text: str = DEFAULT_TEXT
    error_kind: str | None = None
    retry_reason: str | None = None
    settings: dict = field(default_factory=dict)


def preset(name: str, **changes) -> Scenario:
    return Scenario.preset(name).model_copy(update=changes)


STALL = {"timeouts": {"first_token": 0.3, "idle": 0.3}}
CASES: dict[str, Case] = {
    "normal": Case([preset("normal")], ["started", "text", *COMPLETED_TAIL], 1),
    "429 then ok": Case(
        [preset("rate_limit"), preset("normal")],
        ["started", "retrying", "text", *COMPLETED_TAIL], 2, retry_reason="rate limited (HTTP 429)",
    ),
    "429 every time": Case(
        [preset("rate_limit")] * 4, ["started", "retrying", "retrying", "retrying", "failed"], 4,
        text="", error_kind="rate_limited",
    ),
    "500 then ok": Case(
        [preset("server_error"), preset("normal")],
        ["started", "retrying", "text", *COMPLETED_TAIL], 2, retry_reason="provider error (HTTP 500)",
    ),
    "503 then ok": Case(
        [preset("unavailable"), preset("normal")],
        ["started", "retrying", "text", *COMPLETED_TAIL], 2, retry_reason="provider error (HTTP 503)",
    ),
    "529 then ok": Case(
        [preset("overloaded"), preset("normal")],
        ["started", "retrying", "text", *COMPLETED_TAIL], 2, retry_reason="provider overloaded (HTTP 529)",
    ),
    "x-should-retry false": Case(
        [preset("should_not_retry")], ["started", "failed"], 1, text="", error_kind="server_error"
    ),
    "x-should-retry true on a 400": Case(
        [preset("bad_request", headers={"x-should-retry": "true"}), preset("normal")],
        ["started", "retrying", "text", *COMPLETED_TAIL], 2,
    ),
    "401": Case([preset("unauthorized")], ["started", "failed"], 1, text="", error_kind="authentication"),
    "400": Case([preset("bad_request")], ["started", "failed"], 1, text="", error_kind="request_rejected"),
    "reset before response": Case(
        [preset("reset_before_response"), preset("normal")],
        ["started", "retrying", "text", *COMPLETED_TAIL], 2, retry_reason="connection failed",
    ),
    "reset mid-stream": Case(
        [preset("reset_mid_stream")], ["started", "text", "failed"], 1, text=PARTIAL,
        error_kind="connection_failed",
    ),
    "error event mid-stream": Case(
        [preset("error_event")], ["started", "text", "failed"], 1, text=PARTIAL,
    ),
    "error event before text": Case(
        [preset("error_event", after_tokens=0, error_type="overloaded_error"), preset("normal")],
        ["started", "retrying", "text", *COMPLETED_TAIL], 2,
    ),
    "stall before first token": Case(
        [preset("stall_before_first_token", stall_seconds=5), preset("normal")],
        ["started", "retrying", "text", *COMPLETED_TAIL], 2, retry_reason="no first token in time",
        settings=STALL,
    ),
    "stall mid-stream": Case(
        [preset("stall_mid_stream", stall_seconds=5)], ["started", "text", "failed"], 1, text=PARTIAL,
        error_kind="idle_timeout", settings=STALL,
    ),
    "no terminal event after text": Case(
        [preset("no_terminal_event")], ["started", "text", "failed"], 1, text=PARTIAL,
        error_kind="stream_ended_early",
    ),
    "no terminal event before text": Case(
        [preset("no_terminal_event", after_tokens=0), preset("normal")],
        ["started", "retrying", "text", *COMPLETED_TAIL], 2, retry_reason="stream ended early",
    ),
    "empty body, ended early every time": Case(
        [preset("no_terminal_event", after_tokens=0)] * 2, ["started", "retrying", "failed"], 2, text="",
        error_kind="stream_ended_early", settings={"retry": {"max_attempts": 2}},
    ),
    "malformed JSON": Case(
        [preset("malformed_json")], ["started", "text", "failed"], 1, text=PARTIAL,
        error_kind="malformed_stream",
    ),
}

# The same mid-stream error event is reported differently by each protocol's default error type.
ERROR_EVENT_KINDS = {"responses": "rate_limited", "chat": "server_error", "messages": "overloaded"}


def collapse(kinds: list[str]) -> list[str]:
    out: list[str] = []
    for kind in kinds:
        if not (kind == "text" and out and out[-1] == "text"):
            out.append(kind)
    return out


@pytest.mark.parametrize("name", list(CASES))
async def test_fault(name: str, protocol: str, server) -> None:
    case = CASES[name]
    server.enqueue(*case.scenarios)
    service = service_for(server, **case.settings)
    run = service.start({"model": PROTOCOL_MODELS[protocol], "prompt": "Tell me a story."})
    terminal = await run.wait()
    await service.aclose()

    assert collapse([e.kind for e in run.log]) == case.kinds
    shown = "".join(e.text for e in run.log if isinstance(e, TextDelta))
    assert shown == case.text  # never duplicated by a retry, never lost on a failure
    assert terminal.text == case.text
    assert len(server.requests) == case.requests
    if case.retry_reason:
        assert next(e for e in run.log if isinstance(e, Retrying)).reason == case.retry_reason
    if isinstance(terminal, Failed):
        expected = case.error_kind or ERROR_EVENT_KINDS[protocol]
        assert terminal.error_kind == expected
        assert terminal.message and "Traceback" not in terminal.message
    for index in range(len(server.requests)):  # nothing left dangling
        assert server.wait_closed(index, timeout=2).closed_at is not None


async def test_retry_waits_as_long_as_retry_after_asks(protocol: str, server) -> None:
    server.enqueue(preset("rate_limit", headers={"retry-after-ms": "300"}), preset("normal"))
    service = service_for(server, retry={"initial_delay": 5})  # backoff would be far longer
    run = service.start({"model": PROTOCOL_MODELS[protocol], "prompt": "hi"})
    await run.wait()
    await service.aclose()
    retry = next(e for e in run.log if isinstance(e, Retrying))
    assert retry.delay == pytest.approx(0.3)
    assert retry.describe() == "rate limited (HTTP 429) — retrying in 0.3 s (attempt 2 of 4)"
    first, second = server.requests
    assert second.received_at - first.received_at >= 0.3


async def test_retry_after_longer_than_the_cap_fails_at_once(protocol: str, server) -> None:
    server.enqueue(preset("rate_limit", headers={"retry-after": "120"}))
    service = service_for(server, retry={"max_retry_after": 10})
    run = service.start({"model": PROTOCOL_MODELS[protocol], "prompt": "hi"})
    failed = await run.wait()
    await service.aclose()
    assert isinstance(failed, Failed) and len(server.requests) == 1
    assert "asks to wait 120 s, longer than the 10 s llmtool waits" in failed.message


async def test_max_tokens_ends_as_a_completed_truncated_answer(protocol: str, server) -> None:
    service = service_for(server)
    run = service.start({"model": PROTOCOL_MODELS[protocol], "prompt": "hi", "max_output_tokens": 5})
    completed = await run.wait()
    await service.aclose()
    assert completed.kind == "completed" and completed.finish_reason == "max_tokens"
    assert completed.text == "".join(TOKENS[:5])


async def test_usage_and_cost_come_from_the_provider(protocol: str, server) -> None:
    server.enqueue(preset("normal", input_tokens=1000, cached_input_tokens=400))
    service = service_for(server)
    run = service.start({"model": PROTOCOL_MODELS[protocol], "prompt": "hi"})
    completed = await run.wait()
    await service.aclose()
    metrics = completed.metrics
    assert metrics.output_tokens == len(TOKENS) and metrics.cached_input_tokens == 400
    assert metrics.usage_estimated is False and metrics.deltas == len(TOKENS)
    assert metrics.time_to_first_token is not None and metrics.time_to_first_token <= metrics.total_time
    if protocol == "chat":
        assert metrics.input_tokens == 1000 and metrics.cost_usd == 0.0  # local models are free
    elif protocol == "responses":
        assert metrics.input_tokens == 1000
        assert metrics.cost_usd == pytest.approx((600 * 0.40 + 400 * 0.10 + len(TOKENS) * 1.60) / 1e6)
    else:  # Anthropic reports cache reads beside input tokens; we add them up
        assert metrics.input_tokens == 1400


async def test_openai_response_failed_event_is_a_failure(server) -> None:
    server.enqueue(preset("error_event", error_type="response.failed"))
    service = service_for(server)
    run = service.start({"model": PROTOCOL_MODELS["responses"], "prompt": "hi"})
    failed = await run.wait()
    await service.aclose()
    assert failed.kind == "failed" and failed.error_kind == "response_failed"
    assert failed.text == PARTIAL


async def test_the_request_carries_system_history_and_parameters(protocol: str, server) -> None:
    service = service_for(server)
    run = service.start({
        "model": PROTOCOL_MODELS[protocol],
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
        "prompt": "And now?",
        "temperature": 0.2,
    })
    await run.wait()
    await service.aclose()
    body = server.requests[0].body
    assert body["stream"] is True
    # Anthropic's current Messages API has no sampling parameters; the others get the value.
    assert body.get("temperature") == (None if protocol == "messages" else 0.2)
    text = str(body)
    assert all(part in text for part in ("Be brief.", "Hello!", "And now?"))


async def test_nothing_listening_is_retried_then_reported_clearly(protocol: str) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    service = service_at(f"{url}/v1", url, retry={"max_attempts": 2})
    run = service.start({"model": PROTOCOL_MODELS[protocol], "prompt": "hi"})
    failed = await run.wait()
    await service.aclose()
    assert [e.kind for e in run.log] == ["started", "retrying", "failed"]
    assert failed.error_kind == "connection_failed"
    assert failed.message.startswith("could not connect to") and "gave up after 2 attempts" in failed.message
    assert url not in failed.message  # base URLs may carry credentials: never in messages

