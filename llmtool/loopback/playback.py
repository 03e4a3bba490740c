"""Plays one scenario on one connection: the byte-level script of a normal answer and of each fault."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .error_bodies import error_body
from .http11 import LAST_CHUNK, Connection, response_head
from .protocols import Protocol, max_tokens, request_id_header
from .scenarios import Scenario
from .wire import StreamEncoder, make_encoder, split_tokens

# Faults that replace the normal ending of the stream.
_ENDING_FAULTS = {"reset_mid_stream", "error_event", "no_terminal_event", "malformed_json"}
_MID_STREAM = _ENDING_FAULTS | {"stall_mid_stream"}

# Before a mid-stream RST, give the client a moment to read the deltas already sent: a reset
# can make the peer's kernel drop bytes the application has not read yet.
_RESET_GRACE_SECONDS = 0.05

Report = Callable[..., None]


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

    ``report(**fields)`` receives ``status`` and ``deltas_sent`` updates for the record.
    """
    headers = {request_id_header(protocol): request_id, **scenario.headers}
    if scenario.kind == "reset_before_response":
        conn.reset()
        return True
    if scenario.kind == "http_error":
        payload = error_body(
            protocol,
            scenario.status,
            error_type=scenario.error_type,
            message=scenario.error_message,
            request_id=request_id,
        )
        report(status=scenario.status)
        return await conn.send_json(scenario.status, payload, headers)

    request = body if isinstance(body, dict) else {}
    model = request.get("model")
    tokens = split_tokens(scenario.text)
    cap = max_tokens(protocol, request)
    truncated = cap is not None and cap < len(tokens)
    if truncated:
        tokens = tokens[:cap]
    encoder = make_encoder(
        protocol,
        model=model if isinstance(model, str) else "loopback",
        body=request,
        scenario=scenario,
        truncated=truncated,
    )
    if request.get("stream") is True:
        tps = scenario.tokens_per_second or tokens_per_second
        return await _stream(conn, encoder, tokens, scenario, tps, headers, report)
    return await _plain(conn, encoder, tokens, scenario, headers, report)


async def _plain(
    conn: Connection,
    encoder: StreamEncoder,
    tokens: list[str],
    scenario: Scenario,
    headers: dict[str, str],
    report: Report,
) -> bool:
    """Non-streaming: stalls delay the answer, a mid-stream reset resets, other faults are ignored."""
    if scenario.kind.startswith("stall_") and not await conn.pause(scenario.stall_seconds):
        return False
    if scenario.kind == "reset_mid_stream":
        conn.reset()
        return True
    for token in tokens:
        encoder.add(token)
    payload = json.dumps(encoder.final_object(), separators=(",", ":"), ensure_ascii=False).encode()
    report(status=200, deltas_sent=len(tokens))
    return await conn.send_json(200, payload, headers)


async def _stream(
    conn: Connection,
    encoder: StreamEncoder,
    tokens: list[str],
    scenario: Scenario,
    tokens_per_second: float | None,
    headers: dict[str, str],
    report: Report,
) -> bool:
    kind = scenario.kind
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
    for frame in encoder.preamble():
        if not await conn.send_chunk(frame):
            return False
    if kind == "stall_before_first_token" and not await conn.pause(scenario.stall_seconds):
        return False

    fault_at = min(scenario.after_tokens, len(tokens)) if kind in _MID_STREAM else None
    ends_normally = kind not in _ENDING_FAULTS
    delay = 1.0 / tokens_per_second if tokens_per_second else 0.0
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
    for frame in frames:
        if not await conn.send_chunk(frame):
            return False
    return await conn.send(LAST_CHUNK)
