"""Byte-exact frame builders for the three streaming protocols.

Each encoder is a small deterministic state machine (sequence numbers, text so far) whose
methods return the bytes of whole SSE frames; it does no I/O. ``server``/``playback`` decide
when to send which frame.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

from .protocols import Protocol
from .scenarios import Scenario

_TOKEN = re.compile(r"\s*\S+|\s+")


def split_tokens(text: str) -> list[str]:
    """Words with their leading whitespace; ``"".join(split_tokens(t)) == t``."""
    return _TOKEN.findall(text)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def sse(data: dict[str, Any] | str, event: str | None = None) -> bytes:
    """One SSE frame: optional ``event:`` line, one ``data:`` line, blank line."""
    payload = data if isinstance(data, str) else _dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def _new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex}"


class StreamEncoder:
    """Common state; subclasses build the protocol's frames."""

    def __init__(self, *, model: str, body: dict[str, Any], scenario: Scenario, truncated: bool):
        self.model = model
        self.body = body
        self.scenario = scenario
        self.truncated = truncated
        self.text = ""
        self.count = 0
        self.created = int(time.time())

    def add(self, token: str) -> None:
        self.text += token
        self.count += 1

    def preamble(self) -> list[bytes]:
        return []

    def delta(self, token: str, *, last: bool) -> bytes:
        raise NotImplementedError

    def terminal(self) -> list[bytes]:
        raise NotImplementedError

    def error_event(self) -> bytes:
        raise NotImplementedError

    def malformed(self) -> bytes:
        raise NotImplementedError

    def final_object(self) -> dict[str, Any]:
        """The non-streaming response body for the text added so far."""
        raise NotImplementedError


class ResponsesEncoder(StreamEncoder):
    """OpenAI Responses API: ``event:`` + ``data:`` frames with increasing ``sequence_number``."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.seq = 0
        self.response_id = _new_id("resp_")
        self.item_id = _new_id("msg_")

    def _event(self, type_: str, **fields: Any) -> bytes:
        frame = sse({"type": type_, "sequence_number": self.seq, **fields}, event=type_)
        self.seq += 1
        return frame

    def _part(self) -> dict[str, Any]:
        return {"type": "output_text", "text": self.text, "annotations": [], "logprobs": []}

    def _item(self, status: str) -> dict[str, Any]:
        content = [self._part()] if status != "in_progress" else []
        return {"id": self.item_id, "type": "message", "status": status, "role": "assistant", "content": content}

    def _usage(self) -> dict[str, Any]:
        s = self.scenario
        return {
            "input_tokens": s.input_tokens,
            "input_tokens_details": {"cached_tokens": s.cached_input_tokens},
            "output_tokens": self.count,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": s.input_tokens + self.count,
        }

    def _response(self, status: str, **overrides: Any) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "id": self.response_id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": None,
            "instructions": self.body.get("instructions"),
            "max_output_tokens": self.body.get("max_output_tokens"),
            "model": self.model,
            "output": [],
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "store": True,
            "temperature": 1.0,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": [],
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": None,
            "user": None,
            "metadata": {},
        }
        obj.update(overrides)
        return obj

    def _where(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "output_index": 0, "content_index": 0}

    def preamble(self) -> list[bytes]:
        return [
            self._event("response.created", response=self._response("in_progress")),
            self._event("response.in_progress", response=self._response("in_progress")),
            self._event("response.output_item.added", output_index=0, item=self._item("in_progress")),
            self._event(
                "response.content_part.added",
                **self._where(),
                part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
            ),
        ]

    def delta(self, token: str, *, last: bool) -> bytes:
        self.add(token)
        return self._event("response.output_text.delta", **self._where(), delta=token, logprobs=[])

    def terminal(self) -> list[bytes]:
        item_status = "incomplete" if self.truncated else "completed"
        frames = [
            self._event("response.output_text.done", **self._where(), text=self.text, logprobs=[]),
            self._event("response.content_part.done", **self._where(), part=self._part()),
            self._event("response.output_item.done", output_index=0, item=self._item(item_status)),
        ]
        final = self.final_object()
        kind = "response.incomplete" if self.truncated else "response.completed"
        frames.append(self._event(kind, response=final))
        return frames

    def final_object(self) -> dict[str, Any]:
        if self.truncated:
            return self._response(
                "incomplete",
                incomplete_details={"reason": "max_output_tokens"},
                output=[self._item("incomplete")],
                usage=self._usage(),
            )
        return self._response("completed", output=[self._item("completed")], usage=self._usage())

    def error_event(self) -> bytes:
        s = self.scenario
        if s.error_type == "response.failed":
            error: dict[str, Any] = {
                "code": "server_error",
                "message": s.error_message or "The model failed to generate a response.",
            }
            failed = self._response(
                "failed", error=error, output=[self._item("incomplete")], usage=self._usage()
            )
            return self._event("response.failed", response=failed)
        error_type = s.error_type or "too_many_requests"
        error = {
            "type": error_type,
            "code": error_type,
            "message": s.error_message or "Too Many Requests",
            "param": None,
        }
        return self._event("error", error=error)

    def malformed(self) -> bytes:
        self.seq += 1
        return b'event: response.output_text.delta\ndata: {"type": "response.output_text.delta", "delta": "x"\n\n'


class ChatEncoder(StreamEncoder):
    """Chat Completions: ``data:`` frames only, ``finish_reason`` on the last content chunk, ``[DONE]``."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.completion_id = _new_id("chatcmpl-")
        options = self.body.get("stream_options")
        self.include_usage = isinstance(options, dict) and bool(options.get("include_usage"))

    @property
    def finish_reason(self) -> str:
        return "length" if self.truncated else "stop"

    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        chunk: dict[str, Any] = {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_loopback",
            "choices": choices,
        }
        if self.include_usage:
            chunk["usage"] = None
        chunk.update(extra)
        return sse(chunk)

    def _choice(self, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

    def _usage(self) -> dict[str, Any]:
        s = self.scenario
        return {
            "prompt_tokens": s.input_tokens,
            "completion_tokens": self.count,
            "total_tokens": s.input_tokens + self.count,
            "prompt_tokens_details": {"cached_tokens": s.cached_input_tokens, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        }

    def delta(self, token: str, *, last: bool) -> bytes:
        first = self.count == 0
        self.add(token)
        delta: dict[str, Any] = {"role": "assistant", "content": token} if first else {"content": token}
        return self._chunk([self._choice(delta, self.finish_reason if last else None)])

    def terminal(self) -> list[bytes]:
        frames = []
        if self.count == 0:
            frames.append(self._chunk([self._choice({"role": "assistant", "content": ""}, self.finish_reason)]))
        if self.include_usage:
            frames.append(self._chunk([], usage=self._usage()))
        frames.append(b"data: [DONE]\n\n")
        return frames

    def error_event(self) -> bytes:
        s = self.scenario
        error = {
            "message": s.error_message or "The server had an error while processing your request. Sorry about that!",
            "type": s.error_type or "server_error",
            "code": s.error_type,
        }
        return sse({"error": error})

    def malformed(self) -> bytes:
        return (
            f'data: {{"id": "{self.completion_id}", "object": "chat.completion.chunk", '
            '"choices": [{"index": 0, "delta": {"content": "x"\n\n'
        ).encode()

    def final_object(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.text, "refusal": None, "annotations": []}
        return {
            "id": self.completion_id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_loopback",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": self.finish_reason}],
            "usage": self._usage(),
        }


class MessagesEncoder(StreamEncoder):
    """Anthropic Messages: every frame has an ``event:`` line; usage split over start and delta."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.message_id = _new_id("msg_")

    @property
    def stop_reason(self) -> str:
        return "max_tokens" if self.truncated else "end_turn"

    def _message(self, content: list[dict[str, Any]], stop_reason: str | None, output_tokens: int) -> dict[str, Any]:
        s = self.scenario
        return {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": s.input_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": s.cached_input_tokens,
                "output_tokens": output_tokens,
            },
        }

    def preamble(self) -> list[bytes]:
        return [
            sse({"type": "message_start", "message": self._message([], None, 1)}, "message_start"),
            sse(
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                "content_block_start",
            ),
            b'event: ping\ndata: {"type": "ping"}\n\n',
        ]

    def delta(self, token: str, *, last: bool) -> bytes:
        self.add(token)
        frame = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": token}}
        return sse(frame, "content_block_delta")

    def terminal(self) -> list[bytes]:
        message_delta = {
            "type": "message_delta",
            "delta": {"stop_reason": self.stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": self.count},
        }
        return [
            sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            sse(message_delta, "message_delta"),
            sse({"type": "message_stop"}, "message_stop"),
        ]

    def error_event(self) -> bytes:
        s = self.scenario
        error = {"type": s.error_type or "overloaded_error", "message": s.error_message or "Overloaded"}
        return sse({"type": "error", "error": error}, "error")

    def malformed(self) -> bytes:
        return (
            b'event: content_block_delta\n'
            b'data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"\n\n'
        )

    def final_object(self) -> dict[str, Any]:
        return self._message([{"type": "text", "text": self.text}], self.stop_reason, self.count)


_ENCODERS: dict[Protocol, type[StreamEncoder]] = {
    "responses": ResponsesEncoder,
    "chat": ChatEncoder,
    "messages": MessagesEncoder,
}


def make_encoder(
    protocol: Protocol, *, model: str, body: dict[str, Any], scenario: Scenario, truncated: bool
) -> StreamEncoder:
    """A fresh encoder for one response."""
    return _ENCODERS[protocol](model=model, body=body, scenario=scenario, truncated=truncated)
