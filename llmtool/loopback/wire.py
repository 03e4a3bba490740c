"""Byte-exact frame builders for the three streaming protocols.

Each encoder is a small deterministic state machine (sequence numbers, text so far) whose
methods return the bytes of whole SSE frames; it does no I/O. ``server``/``playback`` decide
when to send which frame.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from typing import Any, ClassVar

from .protocols import Protocol
from .scenarios import Scenario

_TOKEN = re.compile(r"\s*\S+|\s+")
# Responses reasoning summaries come as one part per "**Heading**" section.
_SUMMARY_PART = re.compile(r"\n\n(?=\*\*)")

# Reasoning formats each protocol can send, the first being its natural default.
_REASONING_FORMATS: dict[Protocol, tuple[str, ...]] = {
    "responses": ("summary", "text", "omitted"),
    "chat": ("reasoning_content", "reasoning", "think_tags", "omitted"),
    "messages": ("thinking", "omitted"),
}

THINK_OPEN = "<think>\n"
THINK_CLOSE = "\n</think>\n\n"


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


def _signature(seed: str) -> str:
    """An opaque base64 blob standing in for a thinking signature / encrypted reasoning."""
    return base64.b64encode(uuid.uuid5(uuid.NAMESPACE_URL, seed).bytes * 6).decode()


def reasoning_format(protocol: Protocol, scenario: Scenario) -> str | None:
    """The format ``scenario``'s reasoning is sent in over ``protocol``; None when it does not think.

    ``"thinking"`` is the Messages protocol's (only) visible format.
    """
    if not scenario.thinks:
        return None
    formats = _REASONING_FORMATS[protocol]
    wanted = scenario.reasoning_format
    return wanted if wanted in formats else formats[0]


def reasoning_tokens(fmt: str | None, text: str | None) -> list[tuple[int, str]]:
    """The visible reasoning deltas as ``(part, token)``; parts only split the ``summary`` format."""
    if fmt is None or fmt == "omitted" or not text:
        return []
    parts = _SUMMARY_PART.split(text) if fmt == "summary" else [text]
    return [(i, token) for i, part in enumerate(parts) for token in split_tokens(part)]


def hidden_reasoning_count(fmt: str | None, text: str | None) -> int:
    """Tokens the model thinks without sending them (``omitted``); they still count in usage."""
    return len(split_tokens(text)) if fmt == "omitted" and text else 0


class StreamEncoder:
    """Common state; subclasses build the protocol's frames.

    Call order: ``preamble``, then ``reasoning_delta``s and ``answer_start`` when the scenario
    thinks, then ``delta``s, then ``terminal`` (or a fault frame). Without a reasoning phase the
    preamble already opens the answer and ``answer_start`` returns nothing.
    """

    protocol: ClassVar[Protocol]

    def __init__(self, *, model: str, body: dict[str, Any], scenario: Scenario, truncated: bool):
        self.model = model
        self.body = body
        self.scenario = scenario
        self.truncated = truncated
        self.text = ""
        self.count = 0
        self.created = int(time.time())
        self.reasoning_format = reasoning_format(self.protocol, scenario)
        self.thinks = self.reasoning_format is not None
        self.reasoning_text = ""
        self.reasoning_parts: list[str] = []
        self.reasoning_count = 0
        self.hidden_reasoning = hidden_reasoning_count(self.reasoning_format, scenario.reasoning)
        self.answer_started = not self.thinks

    @property
    def reasoning_total(self) -> int:
        """Reasoning tokens for usage: those sent plus those thought silently."""
        return self.reasoning_count + self.hidden_reasoning

    @property
    def output_total(self) -> int:
        return self.count + self.reasoning_total

    def add(self, token: str) -> None:
        self.text += token
        self.count += 1

    def add_reasoning(self, token: str, part: int = 0) -> None:
        while len(self.reasoning_parts) <= part:
            self.reasoning_parts.append("")
        self.reasoning_parts[part] += token
        self.reasoning_text += token
        self.reasoning_count += 1

    def preamble(self) -> list[bytes]:
        return []

    def reasoning_delta(self, token: str, part: int = 0) -> list[bytes]:
        """Frames carrying one reasoning token (``part`` is the summary part for Responses)."""
        raise NotImplementedError

    def answer_start(self) -> list[bytes]:
        """Frames that end the reasoning phase and open the answer; nothing if already open."""
        if self.answer_started:
            return []
        self.answer_started = True
        return self._end_reasoning() + self._open_answer()

    def _end_reasoning(self) -> list[bytes]:
        return []

    def _open_answer(self) -> list[bytes]:
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
    """OpenAI Responses API: ``event:`` + ``data:`` frames with increasing ``sequence_number``.

    When the scenario thinks, a ``reasoning`` output item comes first (output_index 0) and the
    answer message is output_index 1.
    """

    protocol = "responses"

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.seq = 0
        self.response_id = _new_id("resp_")
        self.item_id = _new_id("msg_")
        self.reasoning_id = _new_id("rs_")
        self.open_part: int | None = None  # summary part / reasoning_text content part being streamed
        include = self.body.get("include")
        self.encrypted = isinstance(include, list) and "reasoning.encrypted_content" in include

    @property
    def answer_index(self) -> int:
        return 1 if self.thinks else 0

    def _event(self, type_: str, **fields: Any) -> bytes:
        frame = sse({"type": type_, "sequence_number": self.seq, **fields}, event=type_)
        self.seq += 1
        return frame

    def _part(self) -> dict[str, Any]:
        return {"type": "output_text", "text": self.text, "annotations": [], "logprobs": []}

    def _item(self, status: str) -> dict[str, Any]:
        content = [self._part()] if status != "in_progress" else []
        return {"id": self.item_id, "type": "message", "status": status, "role": "assistant", "content": content}

    def _reasoning_item(self, done: bool) -> dict[str, Any]:
        item: dict[str, Any] = {"id": self.reasoning_id, "type": "reasoning", "summary": []}
        if done and self.reasoning_format == "summary":
            item["summary"] = [{"type": "summary_text", "text": part} for part in self.reasoning_parts]
        if self.reasoning_format == "text":
            text = [{"type": "reasoning_text", "text": self.reasoning_text}]
            item["content"] = text if done and self.reasoning_count else []
        if self.encrypted and done:
            item["encrypted_content"] = _signature(self.reasoning_id)
        return item

    def _output(self, message_status: str) -> list[dict[str, Any]]:
        output = [self._reasoning_item(done=True)] if self.thinks else []
        return output + ([self._item(message_status)] if self.answer_started else [])

    def _usage(self) -> dict[str, Any]:
        s = self.scenario
        return {
            "input_tokens": s.input_tokens,
            "input_tokens_details": {"cached_tokens": s.cached_input_tokens},
            "output_tokens": self.output_total,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_total},
            "total_tokens": s.input_tokens + self.output_total,
        }

    def _echo(self, field: str, default: dict[str, Any]) -> dict[str, Any]:
        value = self.body.get(field)
        return value if isinstance(value, dict) else default

    def _response(self, status: str, **overrides: Any) -> dict[str, Any]:
        reasoning = self._echo("reasoning", {})
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
            "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
            "store": True,
            "temperature": 1.0,
            "text": self._echo("text", {"format": {"type": "text"}}),
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
        return {"item_id": self.item_id, "output_index": self.answer_index, "content_index": 0}

    def _open_answer(self) -> list[bytes]:
        return [
            self._event(
                "response.output_item.added", output_index=self.answer_index, item=self._item("in_progress")
            ),
            self._event(
                "response.content_part.added",
                **self._where(),
                part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
            ),
        ]

    def preamble(self) -> list[bytes]:
        frames = [
            self._event("response.created", response=self._response("in_progress")),
            self._event("response.in_progress", response=self._response("in_progress")),
        ]
        if self.thinks:
            item = self._reasoning_item(done=False)
            return [*frames, self._event("response.output_item.added", output_index=0, item=item)]
        return frames + self._open_answer()

    # -- reasoning ---------------------------------------------------------------------------

    def _reasoning_where(self) -> dict[str, Any]:
        return {"item_id": self.reasoning_id, "output_index": 0}

    def _open_reasoning_part(self, part: int) -> bytes:
        if self.reasoning_format == "summary":
            return self._event(
                "response.reasoning_summary_part.added",
                **self._reasoning_where(),
                summary_index=part,
                part={"type": "summary_text", "text": ""},
            )
        return self._event(
            "response.content_part.added",
            **self._reasoning_where(),
            content_index=part,
            part={"type": "reasoning_text", "text": ""},
        )

    def _close_reasoning_part(self) -> list[bytes]:
        part = self.open_part
        if part is None:
            return []
        self.open_part = None
        text = self.reasoning_parts[part]
        if self.reasoning_format == "summary":
            where = {**self._reasoning_where(), "summary_index": part}
            return [
                self._event("response.reasoning_summary_text.done", **where, text=text),
                self._event(
                    "response.reasoning_summary_part.done", **where, part={"type": "summary_text", "text": text}
                ),
            ]
        where = {**self._reasoning_where(), "content_index": part}
        return [
            self._event("response.reasoning_text.done", **where, text=text),
            self._event("response.content_part.done", **where, part={"type": "reasoning_text", "text": text}),
        ]

    def reasoning_delta(self, token: str, part: int = 0) -> list[bytes]:
        frames: list[bytes] = []
        if part != self.open_part:
            frames += self._close_reasoning_part()
            frames.append(self._open_reasoning_part(part))
            self.open_part = part
        self.add_reasoning(token, part)
        if self.reasoning_format == "summary":
            frames.append(
                self._event(
                    "response.reasoning_summary_text.delta", **self._reasoning_where(), summary_index=part, delta=token
                )
            )
        else:
            frames.append(
                self._event("response.reasoning_text.delta", **self._reasoning_where(), content_index=part, delta=token)
            )
        return frames

    def _end_reasoning(self) -> list[bytes]:
        item = self._reasoning_item(done=True)
        closing = self._close_reasoning_part()
        return [*closing, self._event("response.output_item.done", output_index=0, item=item)]

    # -- answer ------------------------------------------------------------------------------

    def delta(self, token: str, *, last: bool) -> bytes:
        self.add(token)
        return self._event("response.output_text.delta", **self._where(), delta=token, logprobs=[])

    def terminal(self) -> list[bytes]:
        item_status = "incomplete" if self.truncated else "completed"
        if self.answer_started:
            frames = [
                self._event("response.output_text.done", **self._where(), text=self.text, logprobs=[]),
                self._event("response.content_part.done", **self._where(), part=self._part()),
                self._event(
                    "response.output_item.done", output_index=self.answer_index, item=self._item(item_status)
                ),
            ]
        else:  # the cap was reached while thinking: no answer item at all
            frames = self._end_reasoning()
        final = self.final_object()
        kind = "response.incomplete" if self.truncated else "response.completed"
        frames.append(self._event(kind, response=final))
        return frames

    def final_object(self) -> dict[str, Any]:
        if self.truncated:
            return self._response(
                "incomplete",
                incomplete_details={"reason": "max_output_tokens"},
                output=self._output("incomplete"),
                usage=self._usage(),
            )
        return self._response("completed", output=self._output("completed"), usage=self._usage())

    def error_event(self) -> bytes:
        s = self.scenario
        if s.error_type == "response.failed":
            error: dict[str, Any] = {
                "code": "server_error",
                "message": s.error_message or "The model failed to generate a response.",
            }
            failed = self._response("failed", error=error, output=self._output("incomplete"), usage=self._usage())
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
    """Chat Completions: ``data:`` frames only, ``finish_reason`` on the last content chunk, ``[DONE]``.

    Reasoning goes in ``delta.reasoning_content`` or ``delta.reasoning`` (with ``content: null``),
    or as ``<think>…</think>`` inside ``content``; ``omitted`` sends nothing while thinking.
    """

    protocol = "chat"

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.completion_id = _new_id("chatcmpl-")
        options = self.body.get("stream_options")
        self.include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        self.role_sent = False
        self.tags = self.reasoning_format == "think_tags"

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

    def _delta_chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        """One choice chunk; the first chunk of the completion also carries the role."""
        if not self.role_sent:
            self.role_sent = True
            delta = {"role": "assistant", **delta}
        return self._chunk([self._choice(delta, finish)])

    def _usage(self) -> dict[str, Any]:
        s = self.scenario
        return {
            "prompt_tokens": s.input_tokens,
            "completion_tokens": self.output_total,
            "total_tokens": s.input_tokens + self.output_total,
            "prompt_tokens_details": {"cached_tokens": s.cached_input_tokens, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": self.reasoning_total, "audio_tokens": 0},
        }

    def preamble(self) -> list[bytes]:
        return [self._delta_chunk({"content": THINK_OPEN})] if self.tags else []

    def reasoning_delta(self, token: str, part: int = 0) -> list[bytes]:
        self.add_reasoning(token, part)
        if self.tags:
            return [self._delta_chunk({"content": token})]
        assert self.reasoning_format in ("reasoning_content", "reasoning")
        return [self._delta_chunk({"content": None, self.reasoning_format: token})]

    def _end_reasoning(self) -> list[bytes]:
        return [self._delta_chunk({"content": THINK_CLOSE})] if self.tags else []

    def delta(self, token: str, *, last: bool) -> bytes:
        self.add(token)
        return self._delta_chunk({"content": token}, self.finish_reason if last else None)

    def terminal(self) -> list[bytes]:
        frames = []
        if self.count == 0:
            frames.append(self._delta_chunk({"content": ""}, self.finish_reason))
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
        content = self.text
        if self.tags:
            content = THINK_OPEN + self.reasoning_text + (THINK_CLOSE + self.text if self.answer_started else "")
        message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None, "annotations": []}
        if self.reasoning_format in ("reasoning_content", "reasoning"):
            message[self.reasoning_format] = self.reasoning_text
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
    """Anthropic Messages: every frame has an ``event:`` line; usage split over start and delta.

    When the scenario thinks, a ``thinking`` block is index 0 (``thinking_delta``s, then one
    ``signature_delta``; only the signature when display is omitted) and the text block index 1.
    """

    protocol = "messages"

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.message_id = _new_id("msg_")
        self.signature = _signature(self.message_id)

    @property
    def stop_reason(self) -> str:
        return "max_tokens" if self.truncated else "end_turn"

    @property
    def text_index(self) -> int:
        return 1 if self.thinks else 0

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
                "cache_creation_input_tokens": s.cache_creation_input_tokens,
                "cache_read_input_tokens": s.cached_input_tokens,
                "output_tokens": output_tokens,
            },
        }

    def _block_start(self, index: int, block: dict[str, Any]) -> bytes:
        return sse({"type": "content_block_start", "index": index, "content_block": block}, "content_block_start")

    def _block_delta(self, index: int, delta: dict[str, Any]) -> bytes:
        return sse({"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta")

    def _block_stop(self, index: int) -> bytes:
        return sse({"type": "content_block_stop", "index": index}, "content_block_stop")

    def _open_answer(self) -> list[bytes]:
        return [self._block_start(self.text_index, {"type": "text", "text": ""})]

    def preamble(self) -> list[bytes]:
        first = (
            self._block_start(0, {"type": "thinking", "thinking": "", "signature": ""})
            if self.thinks
            else self._open_answer()[0]
        )
        return [
            sse({"type": "message_start", "message": self._message([], None, 1)}, "message_start"),
            first,
            b'event: ping\ndata: {"type": "ping"}\n\n',
        ]

    def reasoning_delta(self, token: str, part: int = 0) -> list[bytes]:
        self.add_reasoning(token, part)
        return [self._block_delta(0, {"type": "thinking_delta", "thinking": token})]

    def _end_reasoning(self) -> list[bytes]:
        return [self._block_delta(0, {"type": "signature_delta", "signature": self.signature}), self._block_stop(0)]

    def delta(self, token: str, *, last: bool) -> bytes:
        self.add(token)
        return self._block_delta(self.text_index, {"type": "text_delta", "text": token})

    def terminal(self) -> list[bytes]:
        message_delta = {
            "type": "message_delta",
            "delta": {"stop_reason": self.stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": self.output_total},
        }
        # A cap reached while thinking ends the thinking block and leaves no text block.
        close = [self._block_stop(self.text_index)] if self.answer_started else self._end_reasoning()
        return [*close, sse(message_delta, "message_delta"), sse({"type": "message_stop"}, "message_stop")]

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
        content: list[dict[str, Any]] = []
        if self.thinks:
            content.append({"type": "thinking", "thinking": self.reasoning_text, "signature": self.signature})
        if self.answer_started:
            content.append({"type": "text", "text": self.text})
        return self._message(content, self.stop_reason, self.output_total)


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
