"""Prompt text as Jinja, in the sandbox: compile once, find the variables used, render safely.

The environment is Jinja's *immutable sandbox* with strict undefined: `{{ x.__class__ }}` and
friends raise a SecurityError instead of reaching Python internals, lists and dicts cannot be
changed, and a misspelt name is an error rather than an empty string. Autoescape is off: the
output is a prompt, not HTML. `trim_blocks`/`lstrip_blocks` keep `{% for %}` lines out of the text,
so few-shot loops read naturally. `None` renders as an empty string (optional variables).

Every part is compiled with as many leading newlines as it is deep into its file, so Jinja's own
line numbers are file line numbers, in syntax errors and in render-time tracebacks alike.

Resource limits: `**`, `*` and `%` are intercepted, and every filter is wrapped to need the
render context, which keeps Jinja from folding them at compile time (where
`{{ (9 ** 999999999) % 7 }}` or `{{ 'x'|center(300000000) }}` would hang the loader): a power needs
a small exponent, repeating a string or list may not make it longer than MAX_RENDERED_CHARS, and
neither may a `%` format width or a filter's numeric argument. A rendered part is
cut off with a TemplateError as soon as it grows past MAX_RENDERED_CHARS.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
from jinja2 import StrictUndefined, meta, nodes
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import _PassArg

from llmtool.templates.errors import TemplateError

MAX_RENDERED_CHARS = 1_000_000  # a prompt longer than this is a mistake (or an attack)
MAX_EXPONENT = 100
_MAX_POWER_BITS = 4096  # an integer power may not be bigger than this


class TooLargeError(Exception):
    """Rendering would produce (or already produced) more than MAX_RENDERED_CHARS."""


def _none_as_empty(value: Any) -> Any:
    return "" if value is None else value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class LimitedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with `**` and `*` kept to sizes a prompt can need."""

    intercepted_binops = frozenset({"**", "*", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {name: _runtime_only(name, f) for name, f in self.filters.items()}

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            return _power(left, right)
        if operator == "*":
            _check_repeat(left, right)
            _check_repeat(right, left)
        if operator == "%" and isinstance(left, str):
            _check_format_widths(left)
        return super().call_binop(context, operator, left, right)


def _runtime_only(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` as a filter Jinja cannot run while compiling (it folds constant filter calls:
    `{{ 'x'|center(300000000) }}` would build that string in the loader), and that refuses
    numeric arguments bigger than a prompt can be."""
    passes = _PassArg.from_obj(func)

    @jinja2.pass_context
    def filter_(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        for arg in (*args, *kwargs.values()):
            if _is_number(arg) and abs(arg) > MAX_RENDERED_CHARS:
                raise TooLargeError(f"a filter argument of {arg} is more than a prompt can need")
        if name == "format" and isinstance(value, str):
            _check_format_widths(value)
        if passes is _PassArg.context:
            return func(context, value, *args, **kwargs)
        if passes is _PassArg.eval_context:
            return func(context.eval_ctx, value, *args, **kwargs)
        if passes is _PassArg.environment:
            return func(context.environment, value, *args, **kwargs)
        return func(value, *args, **kwargs)

    return filter_


_WIDTH = re.compile(r"%[-#0 +]*(\d*)(?:\.(\d+))?")


def _check_format_widths(text: str) -> None:
    """Refuse `'%300000000d' % 1` before it builds the string."""
    for match in _WIDTH.finditer(text):
        for number in match.groups():
            if (number and len(number) > 7) or (number and int(number) > MAX_RENDERED_CHARS):
                raise TooLargeError(f"the format width {number} is more than a prompt can need")


def _power(base: Any, exponent: Any) -> Any:
    if not (_is_number(base) and _is_number(exponent)):
        raise SecurityError("'**' only works on numbers in templates")
    if abs(exponent) > MAX_EXPONENT:
        raise SecurityError(f"'**' with an exponent over {MAX_EXPONENT} is not allowed in templates")
    if (
        isinstance(base, int) and isinstance(exponent, int) and exponent > 0
        and base.bit_length() * exponent > _MAX_POWER_BITS
    ):
        raise SecurityError("'**' would make a number too large for a template")
    return base**exponent


def _check_repeat(sequence: Any, count: Any) -> None:
    if isinstance(sequence, (str, list, tuple)) and isinstance(count, int) and not isinstance(count, bool):
        if len(sequence) * count > MAX_RENDERED_CHARS:
            raise TooLargeError(
                f"repeating a {type(sequence).__name__} {count} times would exceed "
                f"{MAX_RENDERED_CHARS:,} characters"
            )
    elif (
        _is_number(sequence) and isinstance(count, int) and not isinstance(count, bool)
        and isinstance(sequence, int) and sequence.bit_length() + count.bit_length() > _MAX_POWER_BITS
    ):
        raise SecurityError("'*' would make a number too large for a template")


ENVIRONMENT = LimitedSandbox(
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
            return _render_capped(self.template, dict(values)).strip()
        except TooLargeError as exc:
            raise self._error(exc, f"the {self.label} is too long: {exc}") from None
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
        line = _line_in(exc.__traceback__, str(self.path))
        if line is None and isinstance(exc, TooLargeError):
            line = self.first_line  # the whole part is too long, not one line of it
        return TemplateError(self.path, line, detail)


def _render_capped(template: jinja2.Template, values: dict[str, Any]) -> str:
    """`template.render(values)`, stopped as soon as the text passes MAX_RENDERED_CHARS."""
    chunks: list[str] = []
    size = 0
    for chunk in template.generate(values):
        size += len(chunk)
        if size > MAX_RENDERED_CHARS:
            raise TooLargeError(f"it renders to more than {MAX_RENDERED_CHARS:,} characters")
        chunks.append(chunk)
    return "".join(chunks)


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
