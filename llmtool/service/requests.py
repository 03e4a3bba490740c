"""What a caller asks for: one run of one model, validated before anything is sent."""

from __future__ import annotations

import math
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from llmtool.errors import InvalidRequestError
from llmtool.providers.base import ChatMessage, ReasoningEffort
from llmtool.settings import TimeoutOverrides, describe_validation_error
from llmtool.text import repair_strings, repair_surrogates
from llmtool.validation import ValidationRules

MAX_OUTPUT_TOKENS = 1_000_000


class RunRequest(BaseModel):
    """A prompt (or a conversation ending with the user's turn) for one `PROVIDER:MODEL`.

    `prompt` is shorthand for a final user message appended to `messages`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    model: str | None = Field(None, description="PROVIDER:MODEL; the default model when unset.")
    prompt: str | None = None
    messages: list[ChatMessage] = Field(default_factory=list)
    system: str | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    max_output_tokens: int | None = Field(None, ge=1, le=MAX_OUTPUT_TOKENS)
    reasoning_effort: ReasoningEffort | None = Field(
        None, description="How hard a reasoning model thinks: none, minimal, low, medium, high, xhigh or "
        "max (models accept some of them); unset: the model's default.",
    )
    cache_prompt: bool | None = Field(
        None, description="Anthropic: cache the system prompt and long user content; unset: the setting.",
    )
    timeouts: TimeoutOverrides = Field(default_factory=TimeoutOverrides)
    validation: ValidationRules = Field(default_factory=ValidationRules)
    template: str | None = Field(None, description="Template name, recorded with the run.")
    template_hash: str | None = None
    variables: dict[str, Any] | None = Field(None, description="The template's variables, recorded with the run.")
    # The template file's text, kept once per hash in the store; set by code, never from request data.
    _template_source: str | None = PrivateAttr(None)

    @property
    def template_source(self) -> str | None:
        return self._template_source

    @field_validator("model", "prompt", "system", "template", "template_hash")
    @classmethod
    def _valid_unicode(cls, text: str | None) -> str | None:
        # A lone surrogate (JSON's "\ud800", a command-line argument's undecodable bytes) fails every
        # provider's encoder: repaired here, U+FFFD, whatever surface the request came from.
        return None if text is None else repair_surrogates(text)

    @field_validator("variables")
    @classmethod
    def _valid_unicode_values(cls, variables: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if variables is None else repair_strings(variables)

    @field_validator("temperature", "max_output_tokens", "timeouts", mode="before")
    @classmethod
    def _finite(cls, value: Any, info: ValidationInfo) -> Any:
        return finite_value(info.field_name or "", value)

    @model_validator(mode="after")
    def _conversation(self) -> RunRequest:
        if self.prompt is not None:
            if not self.prompt.strip():
                raise ValueError("the prompt is empty: write what you want the model to do")
            messages = [*self.messages, ChatMessage(role="user", content=self.prompt)]
            object.__setattr__(self, "messages", messages)
            object.__setattr__(self, "prompt", None)
        if not self.messages:
            raise ValueError("the prompt is empty: write what you want the model to do")
        if self.messages[-1].role != "user":
            raise ValueError("the conversation must end with a user message")
        if not self.messages[-1].content.strip():
            raise ValueError("the prompt is empty: write what you want the model to do")
        return self

    @classmethod
    def parse(cls, data: dict | RunRequest, *, allow_python_rules: bool = False) -> RunRequest:
        """A RunRequest from untrusted data, or an InvalidRequestError saying what is wrong.

        A `python` validation rule calls server code with the model's answer, so untrusted data may
        not name one: only code and template files (`allow_python_rules=True`) can.
        """
        if isinstance(data, RunRequest):
            return data
        try:
            request = cls.model_validate(data)
        except ValidationError as exc:
            raise InvalidRequestError(describe_validation_error(exc)) from None
        if request.validation.python is not None and not allow_python_rules:
            raise InvalidRequestError(
                "validation.python runs code on the server: set it in a template file, not in a request"
            )
        return request


FINITE_ALLOWED = {
    "temperature": "a number from 0 to 2 (unset: the model's default)",
    "max_output_tokens": f"a whole number from 1 to {MAX_OUTPUT_TOKENS:,} (unset: the model's default)",
}


def finite_value(field: str, value: Any) -> Any:
    """`value` for `field` (temperature, max_output_tokens, timeouts) as it came, or a ValueError
    if it is NaN or Infinity (a float, or text float() reads so), saying what the field takes:
    pydantic's own range check says "should be <= 2" of a NaN. For request models (RunRequest, the
    API's CreateRun) in a `mode="before"` validator."""
    if field == "timeouts":
        for name, seconds in (value.items() if isinstance(value, dict) else ()):
            if _not_finite(seconds):
                raise ValueError(f"{name} must be a number of seconds (unset: the setting), not {_shown(seconds)}")
    elif _not_finite(value):
        raise ValueError(f"must be {FINITE_ALLOWED.get(field, 'a finite number')}, not {_shown(value)}")
    return value


def _not_finite(value: Any) -> bool:
    """NaN or ±Infinity, as a float or as the text a float() would read so."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, str):
        try:
            return not math.isfinite(float(value))
        except ValueError:
            return False
    return False


def _shown(value: Any) -> str:
    number = float(value)
    return "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")
