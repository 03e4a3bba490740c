"""What `POST /api/runs` accepts: a JSON object, read with a size limit, turned into a RunRequest.

    body = await read_json(request)                   # 413 / 415 / 422 problems
    spec = CreateRun.parse(body)                      # 422 with the clear sentence
    run_request = spec.run_request(registry, history) # a plain prompt, or a template and its variables
"""

from __future__ import annotations

import json
import math
from typing import Any

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from llmtool.errors import InvalidRequestError
from llmtool.providers.base import ChatMessage, ReasoningEffort
from llmtool.service import RunRequest
from llmtool.service.requests import finite_value
from llmtool.settings import TimeoutOverrides, describe_validation_error
from llmtool.templates import TemplateRegistry
from llmtool.validation import ValidationRules
from llmtool.web.problems import Problem

MAX_BODY_BYTES = 1024 * 1024  # a prompt of a few hundred pages; beyond it, 413
TEMPLATE_FIELDS = ("prompt", "messages", "system", "validation", "timeouts")


class CreateRun(BaseModel):
    """The body of `POST /api/runs`: a prompt (or messages), or a template with its variables."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, json_schema_extra={"examples": [
        {"model": "demo:assistant", "prompt": "Say hello in French."},
        {"template": "summarise", "variables": {"text": "…"}},
        {"model": "demo:thinker", "prompt": "Plan a picnic.", "reasoning_effort": "low"},
    ]})

    model: str | None = Field(None, description="PROVIDER:MODEL; the template's or the server's default when unset.")
    prompt: str | None = Field(None, description="The user's message (appended to `messages`).")
    messages: list[ChatMessage] | None = Field(None, description="A whole conversation ending with the user's turn.")
    system: str | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    max_output_tokens: int | None = Field(None, ge=1, le=1_000_000)
    reasoning_effort: ReasoningEffort | None = Field(
        None, description="How hard a reasoning model thinks: none, minimal, low, medium, high, xhigh or max "
        "(each model takes some of them; another is refused with 422). Unset: the template's, else the model's "
        "default.",
    )
    cache_prompt: bool | None = Field(
        None, description="Anthropic: cache the system prompt and long user content. Unset: the template's, "
        "else the server's setting.",
    )
    validation: ValidationRules | None = None
    timeouts: TimeoutOverrides | None = None
    template: str | None = Field(None, description="A template's name (see GET /api/templates).")
    variables: dict[str, Any] | None = Field(None, description="The template's variables.")
    conversation_id: str | None = Field(
        None, max_length=64,
        description="Continue this conversation: its stored turns become the messages before `prompt`.",
    )

    @field_validator("temperature", "max_output_tokens", "timeouts", mode="before")
    @classmethod
    def _finite(cls, value: Any, info: ValidationInfo) -> Any:
        return finite_value(info.field_name or "", value)  # NaN or Infinity: what the field takes

    @classmethod
    def parse(cls, data: Any) -> CreateRun:
        if not isinstance(data, dict):
            raise Problem("invalid-request", f"the body must be a JSON object, not {_json_kind(data)}")
        try:
            spec = cls.model_validate(data)
        except ValidationError as exc:
            raise Problem("invalid-request", describe_validation_error(exc)) from None
        if spec.conversation_id is not None and spec.messages is not None:
            raise Problem("invalid-request", "send `messages` or a `conversation_id`, not both: the server builds "
                                             "a conversation's messages from its stored turns")
        if spec.template is not None:
            given = [name for name in TEMPLATE_FIELDS if getattr(spec, name) is not None]
            if given:
                raise Problem("invalid-request", f"{', '.join(given)} cannot go with a template: the template file "
                                                 "sets them (send `variables`, and optionally `model`, "
                                                 "`temperature`, `max_output_tokens`, `reasoning_effort`, "
                                                 "`cache_prompt`)")
        elif spec.variables is not None:
            raise Problem("invalid-request", "`variables` needs a `template`")
        return spec

    def run_request(self, registry: TemplateRegistry, history: list[ChatMessage]) -> RunRequest:
        """The request to run after `history` (a stored conversation's messages); InvalidRequestError
        (or a TemplateError) saying what is wrong."""
        if self.template is not None:
            request = registry.get(self.template).to_run_request(
                self.variables or {}, model=self.model, temperature=self.temperature,
                max_output_tokens=self.max_output_tokens, reasoning_effort=self.reasoning_effort,
            )
            if self.cache_prompt is not None:
                request = request.model_copy(update={"cache_prompt": self.cache_prompt})
            if not history:
                return request
            continued = request.model_copy(update={"messages": [*history, *request.messages]})
            return continued
        fields = self.model_dump(exclude_none=True, exclude={"conversation_id", "template", "variables"})
        if history:
            fields["messages"] = [*history, *(self.messages or [])]
        return RunRequest.parse(fields)


async def read_json(request: Request, limit: int = MAX_BODY_BYTES) -> Any:
    """The body as JSON: 415 unless it says it is JSON, 413 past `limit` bytes, 422 when it does not parse."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json" and not (media.startswith("application/") and media.endswith("+json")):
        said = f"Content-Type {media}" if media else "no Content-Type"
        raise Problem("unsupported-media-type", f"the body must be JSON (Content-Type: application/json); got {said}")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Problem("body-too-large", f"the body is {int(declared):,} bytes; the limit is {limit:,}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem("body-too-large", f"the body is over the limit of {limit:,} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise Problem("invalid-request", "the body is empty: send a JSON object such as {\"prompt\": \"Hello\"}")
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except InvalidRequestError as exc:
        raise Problem("invalid-request", exc.message) from None
    except UnicodeDecodeError:
        raise Problem("invalid-request", "the body is not valid UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise Problem("invalid-request", f"the body is not valid JSON: {exc.msg} "
                                         f"(line {exc.lineno}, column {exc.colno})") from None


def _no_constant(name: str) -> float:
    raise InvalidRequestError(f"{name} is not a JSON number: send a finite number")


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
        return "a number"
    return type(value).__name__
