"""Plays one scenario on one connection: the byte-level script of a normal answer and of each fault."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .error_bodies import error_body, model_not_found_body
from .http11 import LAST_CHUNK, Connection, response_head
from .models import ModelSpec, Provider, anthropic_list, anthropic_model, find, openai_list, openai_model
from .protocols import Protocol, max_tokens, request_id_header, requested_schema
from .scenarios import Scenario
from .wire import (
    StreamEncoder,
    hidden_reasoning_count,
    make_encoder,
    reasoning_format,
    reasoning_tokens,
    split_tokens,
)

# Faults that replace the normal ending of the stream.
_ENDING_FAULTS = {"reset_mid_stream", "error_event", "no_terminal_event", "malformed_json"}
_MID_STREAM = _ENDING_FAULTS | {"stall_mid_stream"}

# Before a mid-stream RST, give the client a moment to read the deltas already sent: a reset
# can make the peer's kernel drop bytes the application has not read yet.
_RESET_GRACE_SECONDS = 0.05

Report = Callable[..., None]


@dataclass
class _Plan:
    """What one answer will contain once the request's output cap is applied."""

    reasoning: list[tuple[int, str]]  # visible reasoning deltas as (part, token)
    hidden: int  # reasoning tokens thought silently
    tokens: list[str]  # answer deltas
    truncated: bool
    skip_answer: bool  # the cap was reached while thinking: no answer item/block at all


def _plan(protocol: Protocol, request: dict[str, Any], scenario: Scenario) -> _Plan:
    fmt = reasoning_format(protocol, scenario)
    reasoning = reasoning_tokens(fmt, scenario.reasoning)
    hidden = hidden_reasoning_count(fmt, scenario.reasoning)
    tokens = split_tokens(scenario.text)
    thought = len(reasoning) + hidden
    cap = max_tokens(protocol, request)
    if cap is None or cap >= thought + len(tokens):
        return _Plan(reasoning, hidden, tokens, truncated=False, skip_answer=False)
    return _Plan(
        reasoning[:cap],
        min(hidden, cap),
        tokens[: max(cap - thought, 0)],
        truncated=True,
        skip_answer=fmt is not None and cap <= thought,
    )


async def _http_error(
    conn: Connection,
    protocol: Protocol,
    scenario: Scenario,
    request_id: str,
    headers: dict[str, str],
    report: Report,
) -> bool:
    payload = error_body(
        protocol,
        scenario.status,
        error_type=scenario.error_type,
        message=scenario.error_message,
        request_id=request_id,
    )
    report(status=scenario.status)
    return await conn.send_json(scenario.status, payload, headers)


async def play(
    conn: Connection,
    *,
    protocol: Protocol,
    body: Any,
    scenario: Scenario,
    tokens_per_second: float | None,
    request_id: str,
    report: Report,
) -> bool:
    """Answer the request. Returns False when the client left before we were done.

    ``report(**fields)`` receives ``status``, ``deltas_sent`` and ``reasoning_deltas_sent``
    updates for the record.
    """
    headers = {request_id_header(protocol): request_id, **scenario.headers}
    request = body if isinstance(body, dict) else {}
    model = request.get("model")
    if scenario.kind == "reset_before_response":
        conn.reset()
        return True
    schema = requested_schema(protocol, request) if scenario.reject_structured_output else None
    if schema is not None:
        field = schema[0]
        payload = error_body(
            protocol,
            400,
            error_type="invalid_request_error",
            message=f"{field} json_schema is not supported by this server",
            request_id=request_id,
            param=field,
        )
        report(status=400)
        return await conn.send_json(400, payload, headers)
    if scenario.kind == "http_error":
        return await _http_error(conn, protocol, scenario, request_id, headers, report)
    if scenario.kind == "model_not_found":
        report(status=404)
        return await conn.send_json(404, model_not_found_body(protocol, str(model or ""), request_id), headers)

    plan = _plan(protocol, request, scenario)
    encoder = make_encoder(
        protocol,
        model=model if isinstance(model, str) else "loopback",
        body=request,
        scenario=scenario,
        truncated=plan.truncated,
    )
    encoder.hidden_reasoning = plan.hidden
    if request.get("stream") is True:
        tps = scenario.tokens_per_second or tokens_per_second
        return await _stream(conn, encoder, plan, scenario, tps, headers, report)
    return await _plain(conn, encoder, plan, scenario, headers, report)


async def _plain(
    conn: Connection,
    encoder: StreamEncoder,
    plan: _Plan,
    scenario: Scenario,
    headers: dict[str, str],
    report: Report,
) -> bool:
    """Non-streaming: stalls and thinking delay the answer, a mid-stream reset resets, other faults
    are ignored."""
    if scenario.kind.startswith("stall_") and not await conn.pause(scenario.stall_seconds):
        return False
    if encoder.thinks and not await conn.pause(scenario.think_seconds):
        return False
    if scenario.kind == "reset_mid_stream":
        conn.reset()
        return True
    for part, token in plan.reasoning:
        encoder.add_reasoning(token, part)
    if not plan.skip_answer:
        encoder.answer_start()
    for token in plan.tokens:
        encoder.add(token)
    payload = json.dumps(encoder.final_object(), separators=(",", ":"), ensure_ascii=False).encode()
    report(status=200, deltas_sent=len(plan.tokens), reasoning_deltas_sent=len(plan.reasoning))
    return await conn.send_json(200, payload, headers)


async def _send_all(conn: Connection, frames: list[bytes]) -> bool:
    for frame in frames:
        if not await conn.send_chunk(frame):
            return False
    return True


async def _think(
    conn: Connection,
    encoder: StreamEncoder,
    plan: _Plan,
    scenario: Scenario,
    delay: float,
    report: Report,
) -> bool:
    """The reasoning phase after the reasoning item/block has opened; False when the client left."""
    count = len(plan.reasoning)
    if count and scenario.think_seconds:
        delay = scenario.think_seconds / count
    stall_at = min(scenario.after_tokens, count) if scenario.kind == "stall_during_reasoning" else None
    for i, (part, token) in enumerate(plan.reasoning):
        if i == stall_at and not await conn.pause(scenario.stall_seconds):
            return False
        if delay and not await conn.pause(delay):
            return False
        if not await _send_all(conn, encoder.reasoning_delta(token, part)):
            return False
        report(reasoning_deltas_sent=i + 1)
    if not count and not await conn.pause(scenario.think_seconds):
        return False
    if stall_at == count and not await conn.pause(scenario.stall_seconds):
        return False
    return plan.skip_answer or await _send_all(conn, encoder.answer_start())


async def _stream(
    conn: Connection,
    encoder: StreamEncoder,
    plan: _Plan,
    scenario: Scenario,
    tokens_per_second: float | None,
    headers: dict[str, str],
    report: Report,
) -> bool:
    kind = scenario.kind
    tokens = plan.tokens
    head = response_head(
        200,
        {
            "content-type": "text/event-stream; charset=utf-8",
            "transfer-encoding": "chunked",
            "cache-control": "no-cache",
            **headers,
        },
    )
    report(status=200)
    if not await conn.send(head):
        return False
    if not await _send_all(conn, encoder.preamble()):
        return False
    if kind == "stall_before_first_token" and not await conn.pause(scenario.stall_seconds):
        return False
    delay = 1.0 / tokens_per_second if tokens_per_second else 0.0
    if encoder.thinks and not await _think(conn, encoder, plan, scenario, delay, report):
        return False

    fault_at = min(scenario.after_tokens, len(tokens)) if kind in _MID_STREAM else None
    ends_normally = kind not in _ENDING_FAULTS
    for i, token in enumerate(tokens):
        if i == fault_at:
            if kind != "stall_mid_stream":
                break
            if not await conn.pause(scenario.stall_seconds):
                return False
        if delay and not await conn.pause(delay):
            return False
        last = ends_normally and i == len(tokens) - 1
        if not await conn.send_chunk(encoder.delta(token, last=last)):
            return False
        report(deltas_sent=i + 1)
    if kind == "stall_mid_stream" and fault_at == len(tokens) and not await conn.pause(scenario.stall_seconds):
        return False

    if kind == "reset_mid_stream":
        if not await conn.pause(_RESET_GRACE_SECONDS):
            return False
        conn.reset()
        return True
    if kind == "error_event":
        frames = [encoder.error_event()]
    elif kind == "malformed_json":
        frames = [encoder.malformed()]
    elif kind == "no_terminal_event":
        frames = []
    else:
        frames = encoder.terminal()
    if not await _send_all(conn, frames):
        return False
    return await conn.send(LAST_CHUNK)


async def play_models(
    conn: Connection,
    *,
    anthropic: bool,
    model_id: str | None,
    query: dict[str, str],
    specs: Sequence[ModelSpec],
    scenario: Scenario,
    request_id: str,
    report: Report,
) -> bool:
    """``GET /v1/models`` (``model_id`` None) or ``GET /v1/models/<id>`` in the caller's shape.

    The scenario applies as far as it makes sense for a listing: ``http_error`` answers its error,
    ``reset_before_response`` resets, ``stall_before_first_token`` delays the answer; any other
    kind answers the list.
    """
    shape: Protocol = "messages" if anthropic else "responses"  # which error body shape
    headers = {request_id_header(shape): request_id, **scenario.headers}
    if scenario.kind == "reset_before_response":
        conn.reset()
        return True
    if scenario.kind == "http_error":
        return await _http_error(conn, shape, scenario, request_id, headers, report)
    if scenario.kind == "stall_before_first_token" and not await conn.pause(scenario.stall_seconds):
        return False
    provider: Provider = "anthropic" if anthropic else "openai"
    answer: dict[str, Any]
    if model_id is None:
        answer = anthropic_list(specs, query) if anthropic else openai_list(specs)
    else:
        spec = find(specs, provider, model_id)
        if spec is None:
            report(status=404)
            return await conn.send_json(404, model_not_found_body(shape, model_id, request_id), headers)
        answer = anthropic_model(spec) if anthropic else openai_model(spec)
    report(status=200)
    return await conn.send_json(200, json.dumps(answer, separators=(",", ":")).encode(), headers)
