"""Pure frame builders, scenarios and error bodies: exact bytes, no sockets."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from llmtool.loopback import DEFAULT_TEXT, PRESETS, Scenario, split_tokens
from llmtool.loopback.error_bodies import error_body
from llmtool.loopback.wire import make_encoder


def frames_of(protocol: str, *, truncated: bool = False, body: dict | None = None, n: int = 3) -> list[bytes]:
    enc = make_encoder(protocol, model="m", body=body or {}, scenario=Scenario(), truncated=truncated)
    tokens = split_tokens(DEFAULT_TEXT)[:n]
    frames = enc.preamble()
    frames += [enc.delta(t, last=i == len(tokens) - 1) for i, t in enumerate(tokens)]
    return frames + enc.terminal()


def parse(frame: bytes) -> tuple[str | None, str]:
    assert frame.endswith(b"\n\n")
    event = None
    lines = frame.decode().rstrip("\n").split("\n")
    if lines[0].startswith("event: "):
        event = lines.pop(0)[len("event: ") :]
    assert len(lines) == 1 and lines[0].startswith("data: ")
    return event, lines[0][len("data: ") :]


@pytest.mark.parametrize("text", [DEFAULT_TEXT, "  lead and trail \n", "one", "", "a\n\nb\tc "])
def test_split_tokens_round_trips(text: str) -> None:
    tokens = split_tokens(text)
    assert "".join(tokens) == text
    assert all(t.strip() for t in tokens[:-1])


def test_default_text_is_about_sixty_words() -> None:
    assert 50 <= len(split_tokens(DEFAULT_TEXT)) <= 70


def test_responses_frames_have_event_lines_and_increasing_sequence_numbers() -> None:
    frames = frames_of("responses")
    assert frames[0].startswith(b'event: response.created\ndata: {"type":"response.created","sequence_number":0,')
    parsed = [parse(f) for f in frames]
    types = [json.loads(d)["type"] for _, d in parsed]
    assert [e for e, _ in parsed] == types
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 3,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [json.loads(d)["sequence_number"] for _, d in parsed] == list(range(len(frames)))
    usage = json.loads(parsed[-1][1])["response"]["usage"]
    assert usage["output_tokens"] == 3 and usage["input_tokens_details"] == {"cached_tokens": 0}
    assert all(json.loads(d)["response"]["usage"] is None for _, d in parsed[:2])


def test_responses_truncated_ends_incomplete() -> None:
    last = json.loads(parse(frames_of("responses", truncated=True)[-1])[1])
    assert last["type"] == "response.incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_chat_frames_are_data_only_and_end_with_done() -> None:
    frames = frames_of("chat", body={"stream_options": {"include_usage": True}})
    assert all(f.startswith(b"data: ") for f in frames)
    assert frames[-1] == b"data: [DONE]\n\n"
    chunks = [json.loads(parse(f)[1]) for f in frames[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert [c["choices"][0]["finish_reason"] for c in chunks[:3]] == [None, None, "stop"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3
    assert chunks[-1]["usage"]["prompt_tokens_details"]["cached_tokens"] == 0


def test_chat_without_include_usage_has_no_usage_chunk() -> None:
    frames = frames_of("chat")
    assert len(frames) == 4 and "usage" not in json.loads(parse(frames[0])[1])


def test_messages_frames_all_carry_event_lines() -> None:
    frames = frames_of("messages")
    parsed = [parse(f) for f in frames]
    assert [e for e, _ in parsed] == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * 3,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(json.loads(d)["type"] == e for e, d in parsed)
    start = json.loads(parsed[0][1])["message"]["usage"]
    assert start == {
        "input_tokens": 12,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 1,
    }
    delta = json.loads(parsed[-2][1])
    assert delta["delta"]["stop_reason"] == "end_turn" and delta["usage"] == {"output_tokens": 3}


def test_malformed_frames_are_not_json() -> None:
    for protocol in ("responses", "chat", "messages"):
        enc = make_encoder(protocol, model="m", body={}, scenario=Scenario(), truncated=False)
        with pytest.raises(ValueError):
            json.loads(parse(enc.malformed())[1])


def test_error_bodies_have_provider_shapes() -> None:
    oai = json.loads(error_body("responses", 429))
    assert oai == {
        "error": {
            "message": oai["error"]["message"],
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    ant = json.loads(error_body("messages", 529, request_id="req_1"))
    assert ant == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
        "request_id": "req_1",
    }
    assert json.loads(error_body("chat", 418))["error"]["type"] == "invalid_request_error"


def test_scenario_is_strict_and_presets_are_complete() -> None:
    with pytest.raises(ValidationError):
        Scenario(kind="normal", colour="red")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        Scenario(kind="explode")  # type: ignore[arg-type]
    assert set(PRESETS) == {
        "normal", "rate_limit", "server_error", "unavailable", "overloaded", "should_not_retry",
        "unauthorized", "bad_request", "reset_before_response", "reset_mid_stream", "error_event",
        "stall_before_first_token", "stall_mid_stream", "no_terminal_event", "malformed_json",
    }  # fmt: skip
    assert PRESETS["rate_limit"].headers == {"retry-after-ms": "200", "retry-after": "1"}
    with pytest.raises(KeyError, match="valid: normal, rate_limit"):
        Scenario.preset("nope")
    copy = Scenario.preset("rate_limit")
    copy.headers["x"] = "y"
    assert "x" not in PRESETS["rate_limit"].headers
