"""The template's metadata (its YAML front matter) as a strict model: unknown keys are an error.

    variables:
      tone: {type: choice, choices: [friendly, formal], default: friendly}
      email: {type: long_text, description: The email to rewrite}     # required: no default

A variable is required when it has no default (say `required: false` to make it optional: it then
renders as an empty string). Values from the command line or a CSV cell are strings and are
converted to the variable's type; values from JSONL or Python may already be typed.

YAML 1.1 reads `no` as false and `0123` as 83: the `default` and `choices` of a text or choice
variable must be written as text (quote them), or loading says so — nothing is silently changed.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from llmtool.evaluation.assertion_kinds import AssertionSpec
from llmtool.providers.base import ReasoningEffort
from llmtool.settings import TimeoutOverrides
from llmtool.validation import OutputMode, ValidationRules

VariableType = Literal["text", "long_text", "number", "integer", "choice", "boolean"]
Value = str | int | float | bool

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
EVALUATION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")  # `llmtool eval --name`, `baseline:`
_TEXT_TYPES = ("text", "long_text", "choice")
_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}
# Jinja's own names, and the dataset's reserved columns (see llmtool.evaluation.dataset).
RESERVED_VARIABLES = frozenset(
    {"loop", "self", "super", "varargs", "kwargs", "caller", "true", "false", "none",
     "range", "dict", "lipsum", "cycler", "joiner", "namespace", "id"}
)


def _brief(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def yaml_read_as(value: object) -> str:
    """Why a value meant as text is not text, with the fix: 'YAML read it as …: put it in quotes'."""
    if isinstance(value, bool):
        what = f"YAML read it as the boolean {str(value).lower()} (yes/no/on/off/true/false are booleans)"
    elif isinstance(value, (int, float)):
        what = f"YAML read it as the number {value!r}"
    elif value is None:
        what = "YAML read it as null (~ or null)"
    else:
        what = f"got {type(value).__name__}"
    return f"{what}; put the value in quotes, e.g. \"no\" or \"0123\""


class VariableSpec(BaseModel):
    """One declared variable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: VariableType = "text"
    description: str = ""
    default: Value | None = None
    choices: list[str] | None = None
    required: bool | None = Field(None, description="Default: required when there is no default.")

    @field_validator("default")
    @classmethod
    def _text_default(cls, value: Value | None, info: ValidationInfo) -> Value | None:
        if info.data.get("type") in _TEXT_TYPES and value is not None and not isinstance(value, str):
            raise ValueError(f"must be text, but {yaml_read_as(value)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> VariableSpec:
        if self.type == "choice":
            if not self.choices:
                raise ValueError("a choice variable needs a non-empty 'choices' list")
            if len(set(self.choices)) != len(self.choices):
                raise ValueError("'choices' has duplicates")
        elif self.choices is not None:
            raise ValueError(f"'choices' only applies to type choice, not {self.type}")
        if self.required and self.default is not None:
            raise ValueError("a required variable cannot have a default: drop one of them")
        if self.default is not None:
            object.__setattr__(self, "default", self.coerce(self.default))
        return self

    @property
    def is_required(self) -> bool:
        return self.required if self.required is not None else self.default is None

    def coerce(self, value: Any) -> Value:
        """The value as this variable's type, or a ValueError saying what was expected."""
        if self.type in ("text", "long_text"):
            if isinstance(value, (dict, list)):
                raise ValueError(f"must be text, got {type(value).__name__}")
            return value if isinstance(value, str) else str(value)
        if self.type == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
                return value.strip().lower() in _TRUE
            raise ValueError(f"must be true or false, got {_brief(value)}")
        if self.type == "choice":
            text = value if isinstance(value, str) else str(value)
            if text not in (self.choices or []):
                raise ValueError(f"must be one of {', '.join(self.choices or [])}; got {text!r}")
            return text
        if isinstance(value, bool):
            raise ValueError(f"must be a number, got {_brief(value)}")
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):  # OverflowError: a 400-digit integer
            number = None
        if number is not None and not math.isfinite(number):
            number = None
        if self.type == "integer":
            if number is None or not number.is_integer():
                raise ValueError(f"must be a whole number, got {_brief(value)}")
            return int(number)
        if number is None:
            raise ValueError(f"must be a number, got {_brief(value)}")
        return number

    def sample(self) -> Value:
        """A plausible value for linting: the default, else the first choice or a placeholder."""
        if self.default is not None:
            return self.default
        placeholders: dict[str, Value] = {
            "text": "example",
            "long_text": "An example paragraph.\nWith a second line.",
            "number": 1.5,
            "integer": 3,
            "boolean": True,
        }
        return placeholders.get(self.type, (self.choices or ["example"])[0])


class TemplateMeta(BaseModel):
    """Everything in the front matter. The prompt itself is the file's body."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(None, description="Must match the file name when given.")
    description: str = ""
    model: str | None = Field(None, description="PROVIDER:MODEL; the service default when unset.")
    temperature: float | None = Field(None, ge=0, le=2)
    max_output_tokens: int | None = Field(None, ge=1, le=1_000_000)
    reasoning_effort: ReasoningEffort | None = Field(
        None, description="none, minimal, low, medium, high, xhigh or max; the model's default when unset."
    )
    cache_prompt: bool | None = Field(
        None, description="Anthropic: cache the system prompt and long user content; unset: the setting."
    )
    system: str | None = Field(None, description="System prompt; Jinja like the body.")
    variables: dict[str, VariableSpec] = Field(default_factory=dict)
    output: OutputMode | None = Field(None, description="stream (default) or buffer.")
    validation: ValidationRules = Field(default_factory=ValidationRules)
    timeouts: TimeoutOverrides = Field(default_factory=TimeoutOverrides)
    assertions: list[AssertionSpec] = Field(
        default_factory=list, description="Checked on every case's run of an evaluation (see evaluation.assertions)."
    )
    grader: str | None = Field(None, description="PROVIDER:MODEL grading its judge assertions; unset: the default.")
    baseline: str | None = Field(
        None, description="The evaluation (a name or an id) `llmtool eval` compares with when not told another."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not NAME.match(value):
            raise ValueError("must be letters, digits, - or _, starting with a letter or digit")
        return value

    @field_validator("model", "grader")
    @classmethod
    def _model(cls, value: str | None) -> str | None:
        if value is not None:
            provider, _, name = value.strip().partition(":")
            if not provider or not name:
                raise ValueError(f"must be written PROVIDER:MODEL (e.g. demo:assistant), got {value!r}")
        return value

    @field_validator("baseline")
    @classmethod
    def _baseline(cls, value: str | None) -> str | None:
        if value is not None and not EVALUATION_NAME.match(value):
            raise ValueError("must be an evaluation's name or id: letters, digits, '.', '-' or '_', at most 100")
        return value

    @field_validator("variables")
    @classmethod
    def _variable_names(cls, value: dict[str, VariableSpec]) -> dict[str, VariableSpec]:
        for name in value:
            if not name.isidentifier() or name.startswith("_"):
                raise ValueError(f"variable name {name!r} must be a Python-style identifier (letters, digits, _)")
            if name in RESERVED_VARIABLES or name.startswith(("expect_", "assert_")):
                raise ValueError(f"variable name {name!r} is reserved; pick another")
        return value

    @field_validator("validation")
    @classmethod
    def _one_output_mode(cls, value: ValidationRules, info: ValidationInfo) -> ValidationRules:
        output = info.data.get("output")
        if output is not None and "mode" in value.model_fields_set and value.mode != output:
            raise ValueError(f"output is {output} but validation.mode is {value.mode}: keep one")
        return value

    def rules(self) -> ValidationRules:
        """The validation rules with the output mode in force."""
        if self.output is None or self.output == self.validation.mode:
            return self.validation
        return self.validation.model_copy(update={"mode": self.output})
