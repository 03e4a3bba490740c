"""Prompt text as Jinja, in the sandbox: compile once, find the variables used, render safely.

The environment is Jinja's *immutable sandbox* with strict undefined: `{{ x.__class__ }}` and
friends raise a SecurityError instead of reaching Python internals, lists and dicts cannot be
changed, and a misspelt name is an error rather than an empty string. Autoescape is off: the
output is a prompt, not HTML. `trim_blocks`/`lstrip_blocks` keep `{% for %}` lines out of the text,
so few-shot loops read naturally. `None` renders as an empty string (optional variables).

Every part is compiled with as many leading newlines as it is deep into its file, so Jinja's own
line numbers are file line numbers, in syntax errors and in render-time tracebacks alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Mapping

import jinja2
from jinja2 import StrictUndefined, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from llmtool.templates.errors import TemplateError


def _none_as_empty(value: Any) -> Any:
    return "" if value is None else value


ENVIRONMENT = ImmutableSandboxedEnvironment(
    undefined=StrictUndefined,
    autoescape=False,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=False,
    finalize=_none_as_empty,
)


@dataclass(frozen=True)
class CompiledPart:
    """The system prompt or the prompt body of one file, compiled."""

    label: str  # "system prompt" or "prompt"
    path: Path
    first_line: int
    source: str
    template: jinja2.Template = field(repr=False)
    uses: dict[str, int] = field(default_factory=dict)  # name → first line it is used on

    def render(self, values: Mapping[str, Any]) -> str:
        """The text, stripped; a TemplateError naming the file and line when rendering fails."""
        try:
            return self.template.render(dict(values)).strip()
        except SecurityError as exc:
            raise self._error(exc, f"unsafe template code refused by the sandbox: {exc}") from None
        except jinja2.UndefinedError as exc:
            raise self._error(exc, f"undefined value in the {self.label}: {exc.message}") from None
        except jinja2.TemplateError as exc:
            raise self._error(exc, f"the {self.label} cannot be rendered: {exc}") from None
        except Exception as exc:  # e.g. `{{ 1 / 0 }}` or a filter given the wrong type
            raise self._error(
                exc, f"the {self.label} cannot be rendered: {type(exc).__name__}: {exc}"
            ) from None

    def _error(self, exc: BaseException, detail: str) -> TemplateError:
        return TemplateError(self.path, _line_in(exc.__traceback__, str(self.path)), detail)


def compile_part(source: str, *, path: Path, first_line: int, label: str) -> CompiledPart:
    """Parse and compile `source`, which starts on line `first_line` of `path`."""
    padded = "\n" * (first_line - 1) + source
    filename = str(path)
    try:
        tree = ENVIRONMENT.parse(padded, name=label, filename=filename)
        code = ENVIRONMENT.compile(tree, name=label, filename=filename)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(path, exc.lineno, f"Jinja syntax error in the {label}: {exc.message}") from None
    template = ENVIRONMENT.template_class.from_code(
        ENVIRONMENT, code, ENVIRONMENT.make_globals(None), None
    )
    used = meta.find_undeclared_variables(tree) - set(ENVIRONMENT.globals)
    uses: dict[str, int] = {}
    for node in tree.find_all(nodes.Name):
        if node.ctx == "load" and node.name in used:
            uses[node.name] = min(uses.get(node.name, node.lineno), node.lineno)
    return CompiledPart(label, path, first_line, source, template, uses)


def _line_in(tb: TracebackType | None, filename: str) -> int | None:
    """The innermost traceback line in the template (Jinja rewrites frames to template lines)."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
