"""The template picker and its variable fields: the Gradio side of `template_fields`.

    picker = template_dropdown(context, elem_id="template")         # "(none)" + every template
    render_fields(context, [picker], revision, prefix="var", wire=wire)   # fields follow the pick

The fields are built by `@gr.render` whenever a template is picked (or ↻ bumps `revision`), and
`wire(specs, fields)` attaches the tab's events to them inside the render: a Run button's click
takes the fields themselves as inputs, so a run started right after an edit always sees it (a copy
kept in sync by another event could lag one round trip behind). No browser-side `js=` functions:
the Content-Security-Policy forbids the `eval` Gradio would need for them.

The registry is read again at every pick, preview and run, so a file edited on disk is used at
once; ↻ rebuilds the fields when its variables changed.

With logins, the lists, fields and previews are the login's role's (`roles.Access`; by default the
login of the event being handled): a template the role may not use is not listed, gets no fields, and
its preview is the refusal, never its prompt. The page is built with every template (no login yet)
and fitted on load (`blocks.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import gradio as gr

from llmtool.errors import UsageError
from llmtool.templates import Template, TemplateRegistry
from llmtool.ui.roles import Access, refused_template
from llmtool.ui.template_fields import (
    NONE,
    FieldSpec,
    chosen,
    error_markdown,
    field_specs,
    initial_values,
    preview_markdown,
    problems_markdown,
    template_choices,
    template_info,
    template_values,
)
from llmtool.web.context import AppContext

log = logging.getLogger(__name__)

Field = gr.Textbox | gr.Number | gr.Dropdown | gr.Checkbox  # the input of one template variable


def make_field(spec: FieldSpec, prefix: str) -> Field:
    """The input component for one variable, showing its default."""
    common: dict[str, Any] = dict(
        label=spec.label, info=spec.info or None, interactive=True, elem_id=f"{prefix}-{spec.name}",
        elem_classes=["template-field"],
    )
    if spec.kind == "long_text":
        return gr.Textbox(value=str(spec.value or ""), lines=4, max_lines=14, **common)
    if spec.kind == "text":
        return gr.Textbox(value=str(spec.value or ""), lines=1, max_lines=3, **common)
    if spec.kind in ("number", "integer"):
        # VariableSpec checked that a number variable's default is a number
        precision = 0 if spec.kind == "integer" else None
        return gr.Number(value=cast("float | None", spec.value), precision=precision, **common)
    if spec.kind == "choice":
        return gr.Dropdown(choices=list(spec.choices), value=spec.value, **common)
    return gr.Checkbox(value=bool(spec.value), **common)


def choices(context: AppContext, *, with_none: bool = True, access: Access | None = None) -> list[tuple[str, str]]:
    """The dropdown's (label, value) pairs: "(none)" first when `with_none`, then the templates `access`
    (by default: the login of the event being handled) may use, broken files marked."""
    access = access or Access.current(context)
    listed = template_choices(access.templates(context.registry.entries()))
    return listed if with_none else listed[1:]


def template_dropdown(
    context: AppContext, *, label: str = "Template", value: str | None = None, with_none: bool = True,
    elem_id: str | None = None,
) -> gr.Dropdown:
    options = choices(context, with_none=with_none)
    if value is None:
        value = NONE if with_none else (options[0][1] if options else None)
    # Custom values: a template added on disk since the page was built is still accepted by name.
    return gr.Dropdown(choices=options, value=value, label=label, elem_id=elem_id, interactive=True,
                       allow_custom_value=True)


def load_templates(registry: TemplateRegistry, names: Sequence[str | None],
                   access: Access | None = None) -> list[Template]:
    """The templates picked (each once), skipping "(none)", files that do not load and, with
    `access`, those its role may not use."""
    templates: list[Template] = []
    for name in dict.fromkeys(n for n in map(chosen, names) if n):
        if access is not None and not access.may_use_template(name):
            continue
        try:
            templates.append(registry.get(name))
        except UsageError:
            continue  # shown by the picker's info line
    return templates


Wire = Callable[[list[FieldSpec], list[Field]], None]


def render_fields(
    context: AppContext,
    dropdowns: Sequence[gr.Dropdown],
    revision: gr.State,
    *,
    prefix: str,
    wire: Wire,
    count: gr.components.Component | None = None,
) -> None:
    """Inputs for the variables of the picked templates (of the first `count` dropdowns); `wire`
    connects them (called on every render, with no fields too)."""
    inputs: list[gr.components.Component] = [*dropdowns, revision, *([count] if count is not None else [])]

    @gr.render(inputs=inputs, queue=False, show_progress="hidden")
    def fields(*args: Any) -> None:
        names = list(args[: len(dropdowns)])
        if count is not None:
            names = names[: int(args[-1] or len(names))]
        specs = field_specs(load_templates(context.registry, names, Access.current(context)))
        wire(specs, [make_field(spec, prefix) for spec in specs])


def values_of(specs: Sequence[FieldSpec], fields: Sequence[Any]) -> dict[str, Any]:
    """The fields' values (in `specs` order) by variable name."""
    return {spec.name: value for spec, value in zip(specs, fields, strict=True)}


@dataclass
class TemplateView:
    """What the page shows about the picked template: its info line and the prompt preview."""

    template: Template | None
    info: str
    preview: str


def describe(context: AppContext, name: str | None, fields: dict[str, Any] | None = None,
             access: Access | None = None) -> TemplateView:
    """Read the template as its file is now; `fields` None: preview it with its defaults. A template
    `access`'s role (by default: the current login's) may not use is described by the refusal only."""
    access = access or Access.current(context)
    problems = problems_of(context, access)
    name = chosen(name)
    if name is None:
        return TemplateView(None, context.redact(problems), "")
    if not access.may_use_template(name):
        return TemplateView(None, context.redact(error_markdown(refused_template(access, name))), "")
    try:
        template = context.registry.get(name)
    except UsageError as error:
        return TemplateView(None, context.redact(_join(error_markdown(error.message), problems)), "")
    if fields is None:
        fields = initial_values(field_specs([template]))
    info = _join(template_info(template), problems)
    return TemplateView(template, context.redact(info), context.redact(preview(template, fields)))


def problems_of(context: AppContext, access: Access | None = None) -> str:
    """The files that do not load, as Markdown: those of templates `access`'s role may use."""
    access = access or Access.current(context)
    return problems_markdown([e.error for e in access.templates(context.registry.entries()) if e.error is not None])


def preview(template: Template, fields: dict[str, Any] | None) -> str:
    """The rendered prompt, or what stops it rendering (file:line), never a traceback."""
    try:
        return preview_markdown(template.render(template_values(template, fields)))
    except UsageError as error:
        return error_markdown(error.message)
    except Exception:  # a bug of ours: say so, keep the traceback in the server log
        log.exception("could not preview template %s", template.name)
        return error_markdown("llmtool could not render this template; the server log has the details.")


def _join(*parts: str) -> str:
    return "\n\n".join(p for p in parts if p)
