"""Pure frame builders, scenarios and error bodies: exact bytes, no sockets."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from llmtool.loopback import DEFAULT_REASONING, DEFAULT_TEXT, PRESETS, Scenario, split_tokens
from llmtool.loopback.error_bodies import error_body, model_not_found_body
from llmtool.loopback.models import DEFAULT_MODELS, anthropic_list, model_specs
from llmtool.loopback.protocols import requested_schema
from llmtool.loopback.wire import make_encoder, reasoning_tokens


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
        "thinking", "thinking_silent", "stall_during_reasoning", "model_not_found", "reject_structured_output",
    }  # fmt: skip
    assert not PRESETS["normal"].thinks and PRESETS["thinking"].thinks and PRESETS["stall_during_reasoning"].thinks
    assert PRESETS["thinking_silent"].reasoning_format == "omitted" and PRESETS["thinking"].think_seconds > 0
    assert PRESETS["rate_limit"].headers == {"retry-after-ms": "200", "retry-after": "1"}
    with pytest.raises(KeyError, match="valid: normal, rate_limit"):
        Scenario.preset("nope")
    copy = Scenario.preset("rate_limit")
    copy.headers["x"] = "y"
    assert "x" not in PRESETS["rate_limit"].headers


def thinking_frames(protocol: str, scenario: Scenario, *, answer: int = 2) -> list[tuple[str | None, dict]]:
    enc = make_encoder(protocol, model="m", body={}, scenario=scenario, truncated=False)
    frames = enc.preamble()
    for part, token in reasoning_tokens(enc.reasoning_format, scenario.reasoning):
        frames += enc.reasoning_delta(token, part)
    frames += enc.answer_start()
    tokens = split_tokens(scenario.text)[:answer]
    frames += [enc.delta(t, last=i == len(tokens) - 1) for i, t in enumerate(tokens)]
    frames += enc.terminal()
    parsed = [parse(f) for f in frames]
    return [(event, json.loads(data)) for event, data in parsed if data != "[DONE]"]


def test_responses_summary_frames() -> None:
    scenario = Scenario(reasoning="**A**\n\nx y\n\n**B**\n\nz", text="Hi there")
    frames = thinking_frames("responses", scenario)
    assert [d["type"] for _, d in frames] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        *["response.reasoning_summary_text.delta"] * 3,
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.reasoning_summary_part.added",
        *["response.reasoning_summary_text.delta"] * 2,
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 2,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [d["sequence_number"] for _, d in frames] == list(range(len(frames)))
    assert frames[2][1]["item"] == {"id": frames[2][1]["item"]["id"], "type": "reasoning", "summary": []}
    texts = ["**A**\n\nx y", "**B**\n\nz"]
    assert [d["text"] for _, d in frames if d["type"] == "response.reasoning_summary_text.done"] == texts
    assert [d["summary_index"] for _, d in frames if d["type"] == "response.reasoning_summary_part.added"] == [0, 1]
    done = frames[14][1]
    assert done["type"] == "response.output_item.done" and done["output_index"] == 0
    assert done["item"]["summary"] == [{"type": "summary_text", "text": t} for t in texts]
    assert {d["output_index"] for _, d in frames[15:-1]} == {1}
    usage = frames[-1][1]["response"]["usage"]
    assert usage["output_tokens"] == 7 and usage["output_tokens_details"] == {"reasoning_tokens": 5}


def test_messages_thinking_frames() -> None:
    frames = thinking_frames("messages", Scenario(reasoning="a b", text="Hi there"))
    assert [(e, d.get("index"), d.get("delta", {}).get("type")) for e, d in frames] == [
        ("message_start", None, None),
        ("content_block_start", 0, None),
        ("ping", None, None),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "signature_delta"),
        ("content_block_stop", 0, None),
        ("content_block_start", 1, None),
        ("content_block_delta", 1, "text_delta"),
        ("content_block_delta", 1, "text_delta"),
        ("content_block_stop", 1, None),
        ("message_delta", None, None),
        ("message_stop", None, None),
    ]
    assert frames[1][1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert frames[-2][1]["usage"] == {"output_tokens": 4}


def test_omitted_thinking_frames() -> None:
    scenario = Scenario(reasoning="a b c", reasoning_format="omitted", text="Hi")
    messages = [(e, d.get("delta", {}).get("type")) for e, d in thinking_frames("messages", scenario)]
    assert messages[1:6] == [
        ("content_block_start", None),
        ("ping", None),
        ("content_block_delta", "signature_delta"),
        ("content_block_stop", None),
        ("content_block_start", None),
    ]
    responses = [d["type"] for _, d in thinking_frames("responses", scenario)]
    assert responses[2:4] == ["response.output_item.added", "response.output_item.done"]
    chat = thinking_frames("chat", scenario.model_copy(update={"text": "Hi"}))
    assert [d["choices"][0]["delta"] for _, d in chat] == [{"role": "assistant", "content": "Hi"}]


def test_chat_reasoning_frames() -> None:
    frames = thinking_frames("chat", Scenario(reasoning="a b", text="Hi there"))
    assert [d["choices"][0]["delta"] for _, d in frames] == [
        {"role": "assistant", "content": None, "reasoning_content": "a"},
        {"content": None, "reasoning_content": " b"},
        {"content": "Hi"},
        {"content": " there"},
    ]
    tags = thinking_frames("chat", Scenario(reasoning="a", reasoning_format="think_tags", text="Hi"), answer=1)
    assert [d["choices"][0]["delta"] for _, d in tags] == [
        {"role": "assistant", "content": "<think>\n"},
        {"content": "a"},
        {"content": "\n</think>\n\n"},
        {"content": "Hi"},
    ]


def test_summary_parts_split_at_headings_only() -> None:
    parts = {part for part, _ in reasoning_tokens("summary", DEFAULT_REASONING)}
    assert parts == {0, 1}
    assert {part for part, _ in reasoning_tokens("summary", "one\n\ntwo")} == {0}
    assert {part for part, _ in reasoning_tokens("reasoning_content", DEFAULT_REASONING)} == {0}
    assert reasoning_tokens("omitted", DEFAULT_REASONING) == [] and reasoning_tokens(None, "x") == []


def test_new_scenario_fields_validate() -> None:
    with pytest.raises(ValidationError):
        Scenario(think_seconds=-1)
    with pytest.raises(ValidationError):
        Scenario(reasoning_format="loud")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Scenario(cache_creation_input_tokens=-1)
    assert Scenario(think_seconds=0.1).thinks and Scenario(reasoning_format="omitted").thinks


def test_requested_schema_per_protocol() -> None:
    fmt = {"type": "json_schema", "name": "n", "schema": {}}
    assert requested_schema("responses", {"text": {"format": fmt}}) == ("text.format", fmt)
    assert requested_schema("responses", {"text": {"format": {"type": "text"}}}) is None
    chat = {"response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": {}}}}
    assert requested_schema("chat", chat) == ("response_format", {"name": "n", "schema": {}})
    assert requested_schema("chat", {"response_format": {"type": "json_object"}}) is None
    messages = {"output_config": {"format": {"type": "json_schema", "schema": {}}, "effort": "low"}}
    assert requested_schema("messages", messages) == ("output_config.format", {"type": "json_schema", "schema": {}})
    assert requested_schema("messages", {"output_config": {"effort": "low"}}) is None
    assert requested_schema("models", chat) is None and requested_schema("chat", None) is None


def test_model_not_found_bodies() -> None:
    assert json.loads(model_not_found_body("chat", "gpt-x")) == {
        "error": {
            "message": "The model `gpt-x` does not exist or you do not have access to it.",
            "type": "invalid_request_error",
            "param": None,
            "code": "model_not_found",
        }
    }
    assert json.loads(model_not_found_body("messages", "claude-x", "req_1")) == {
        "type": "error",
        "error": {"type": "not_found_error", "message": "model: claude-x"},
        "request_id": "req_1",
    }


def test_anthropic_list_pages_and_bad_limits() -> None:
    specs = model_specs(["claude-a", "claude-b", "claude-c", "gpt-z"])
    page = anthropic_list(specs, {"limit": "2"})
    assert [m["id"] for m in page["data"]] == ["claude-a", "claude-b"] and page["has_more"] is True
    page = anthropic_list(specs, {"limit": "2", "after_id": "claude-b"})
    assert [m["id"] for m in page["data"]] == ["claude-c"] and page["has_more"] is False
    assert len(anthropic_list(specs, {"limit": "nope"})["data"]) == 3
    assert anthropic_list(model_specs([]), {}) == {"data": [], "has_more": False, "first_id": None, "last_id": None}
    first = anthropic_list(DEFAULT_MODELS, {})["data"][0]
    assert first["created_at"].endswith("Z") and first["created_at"].startswith("2025-")
