"""The `/lite` form: a template's variables as typed HTML fields, and a posted form back to values.

    fields = template_fields(template, typed=form)        # one FormField per variable, defaults filled in
    values, problems = template_values(template, form)   # name → value as the template checks it

Fields are named `var_<variable>`. A checkbox that is not ticked sends nothing, so a boolean
variable missing from the form is `false`. An empty field means "not given": the default applies,
and a required variable is reported missing next to its field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmtool.templates import Template

PREFIX = "var_"


@dataclass(frozen=True)
class FormField:
    """One input for one variable, with what it shows now."""

    name: str
    kind: str  # text | long_text | number | integer | choice | boolean
    description: str
    required: bool
    value: str = ""
    checked: bool = False
    choices: tuple[str, ...] = ()
    error: str | None = None

    @property
    def input_name(self) -> str:
        return PREFIX + self.name

    @property
    def label(self) -> str:
        return self.name.replace("_", " ").capitalize()


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def template_fields(template: Template, typed: Mapping[str, Any] | None = None,
                    errors: Mapping[str, str] | None = None) -> list[FormField]:
    """The template's variables as fields: what the user typed when the form comes back, else the defaults."""
    fields = []
    for name, spec in template.variables.items():
        error = (errors or {}).get(name)
        if typed is not None:
            raw = typed.get(PREFIX + name)
            value = raw if isinstance(raw, str) else ""
            checked = value.strip().lower() in ("true", "on", "yes", "1")
        else:
            value = _shown(spec.default)
            checked = spec.default is True
        fields.append(FormField(name=name, kind=spec.type, description=spec.description, required=spec.is_required,
                                value=value, checked=checked, choices=tuple(spec.choices or ()), error=error))
    return fields


def template_values(template: Template, form: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """(values to render the template with, problems by variable name)."""
    given: dict[str, Any] = {}
    for name, spec in template.variables.items():
        raw = form.get(PREFIX + name)
        if spec.type == "boolean":
            given[name] = isinstance(raw, str) and raw.strip().lower() in ("true", "on", "yes", "1")
        elif isinstance(raw, str) and raw.strip():
            given[name] = raw.strip() if spec.type in ("number", "integer") else raw
    problems: dict[str, str] = {}
    for name, spec in template.variables.items():
        if name not in given:
            if spec.is_required:
                what = f" ({spec.description})" if spec.description else ""
                problems[name] = f"Enter {name.replace('_', ' ')}{what}: this template needs it."
            continue
        try:
            given[name] = spec.coerce(given[name])
        except ValueError as exc:
            problems[name] = f"{name.replace('_', ' ').capitalize()} {exc}."
    return given, problems
