"""Templates as the page shows them: variables → field specs, field values → template values,
the prompt preview and the template list. Pure functions, no Gradio, so every rule is unit-tested:

    specs = field_specs([registry.get("classify")])     # one FieldSpec per variable, in order
    values = initial_values(specs)                      # what the fields show before any edit
    template.render(template_values(template, values))  # empty fields → None: defaults apply

Compare shows one set of fields for several templates: `field_specs` takes the union of their
variables, each with the spec (and default) of the first template that declares it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from llmtool.errors import InvalidRequestError
from llmtool.templates import RenderedPrompt, Template, TemplateError, VariableSpec
from llmtool.templates.model import Value
from llmtool.templates.registry import Entry
from llmtool.ui.status import escape_markdown

NONE = "(none)"  # not a valid template name, so it never clashes with one
FieldKind = Literal["text", "long_text", "number", "integer", "choice", "boolean"]


@dataclass(frozen=True)
class FieldSpec:
    """One input field for one variable."""

    name: str
    kind: FieldKind
    value: Value | None  # what the field shows at first: the default, if any
    info: str = ""
    choices: tuple[str, ...] = ()
    required: bool = False
    used_by: tuple[str, ...] = ()  # the templates that declare it (the first one's spec is used)

    @property
    def label(self) -> str:
        return f"{self.name} *" if self.required else self.name


def field_specs(templates: Sequence[Template]) -> list[FieldSpec]:
    """The fields for these templates' variables: the union, in declaration order."""
    declared: dict[str, VariableSpec] = {}
    users: dict[str, list[str]] = {}
    for template in templates:
        for name, variable in template.variables.items():
            declared.setdefault(name, variable)
            users.setdefault(name, [])
            if template.name not in users[name]:
                users[name].append(template.name)
    several = len({t.name for t in templates}) > 1
    return [_spec(name, variable, users[name], several) for name, variable in declared.items()]


def _spec(name: str, variable: VariableSpec, used_by: list[str], several: bool) -> FieldSpec:
    notes = [variable.description] if variable.description else []
    if variable.is_required:
        notes.append("required")
    if several:
        notes.append("used by " + ", ".join(used_by))
    return FieldSpec(
        name=name,
        kind=variable.type,
        value=variable.default,
        info=" · ".join(notes),
        choices=tuple(variable.choices or ()),
        required=variable.is_required,
        used_by=tuple(used_by),
    )


def initial_values(specs: Iterable[FieldSpec]) -> dict[str, Value | None]:
    """The values the fields hold before any edit (an unticked checkbox is a given `false`)."""
    return {s.name: (bool(s.value) if s.kind == "boolean" else s.value) for s in specs}


def template_values(
    template: Template, fields: Mapping[str, Any] | None, *, strict: bool = True
) -> dict[str, Any]:
    """The values to render `template` with, from the page's fields (or an API caller's JSON).

    An empty or blank field means "not given", so the default applies and a required variable is
    reported missing. `strict=False` drops names the template does not declare (Compare shares one
    set of fields between templates); otherwise rendering reports them as unknown.
    """
    if fields is None:
        return {}
    if not isinstance(fields, Mapping):
        raise InvalidRequestError(
            f"variables must be a JSON object of name → value, got {type(fields).__name__}"
        )
    values: dict[str, Any] = {}
    for name, value in fields.items():
        if not strict and name not in template.variables:
            continue
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        values[name] = value
    return values


# -- what the page shows ------------------------------------------------------------------------
def template_choices(entries: Iterable[Entry]) -> list[tuple[str, str]]:
    """Dropdown choices (label, value): "(none)", the templates, then broken files, marked."""
    choices = [(NONE, NONE)]
    broken = []
    for entry in entries:
        if entry.template is not None:
            choices.append((entry.name, entry.name))
        else:
            broken.append((f"{entry.name} ⚠ does not load", entry.name))
    return choices + broken


def chosen(name: str | None) -> str | None:
    """The template name picked in a dropdown; None for "no template"."""
    name = (name or "").strip()
    return None if name in ("", NONE) else name


def template_label(name: str, content_hash: str | None) -> str:
    """'classify @ 3cf76e7a6320': the template and the version of its file a run used."""
    return f"{name} @ {content_hash}" if content_hash else name


def template_info(template: Template) -> str:
    """One Markdown line about a template: what it does, its model, output mode and version."""
    parts = [f"_{escape_markdown(template.description)}_"] if template.description else []
    if template.model:
        parts.append(f"model {escape_markdown(template.model)}")
    rules = template.rules
    if rules.mode == "buffer":
        parts.append("buffered output")
    parts.append(template_label(template.name, template.content_hash))
    return " · ".join(parts)


def problems_markdown(problems: Sequence[TemplateError]) -> str:
    """The template files that do not load, one per line with file:line; '' when there are none."""
    if not problems:
        return ""
    count = len(problems)
    head = f"⚠ {count} template file{'s' if count != 1 else ''} could not be loaded (the others work):"
    return "\n".join([head, *(f"- {escape_markdown(p.message)}" for p in problems)])


def error_markdown(message: str) -> str:
    return f"⚠ {escape_markdown(message)}"


def preview_markdown(rendered: RenderedPrompt) -> str:
    """The exact system and user prompt, each in a code block (shown literally, never rendered)."""
    parts = []
    if rendered.system:
        parts += [f"**System prompt** · {len(rendered.system)} characters", code_block(rendered.system)]
    else:
        parts.append("**System prompt** · none")
    parts += [f"**User prompt** · {len(rendered.prompt)} characters", code_block(rendered.prompt)]
    return "\n\n".join(parts)


def code_block(text: str) -> str:
    """`text` in a fenced block longer than any run of backticks in it: shown literally."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"
