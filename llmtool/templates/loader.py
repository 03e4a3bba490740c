"""Parse one template file into a `Template`, or a `TemplateError` naming the file and the line.

A template is a Markdown file: YAML front matter between `---` lines, then the prompt::

    ---
    description: Summarise a text for a given audience
    model: demo:assistant
    system: You summarise faithfully. Never invent facts.
    variables:
      text: {type: long_text, description: The text to summarise}
      audience: {type: choice, choices: [executives, engineers], default: engineers}
    validation: {max_length: 4000, forbidden_words: [delve]}
    ---
    Summarise this for {{ audience }}:

    {{ text }}

The name is the file name without `.md`. Everything used in the prompt text must be declared
under `variables`, and everything declared should be used (`llmtool prompts check` says so).
YAML anchors and aliases (`&name`, `*name`) are refused: a few lines of them can expand into
gigabytes ("billion laughs") or a self-referencing structure, and a template never needs them.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Protocol, get_args

import yaml
from pydantic import BaseModel, ValidationError

from llmtool.evaluation.assertion_kinds import AssertionSpec
from llmtool.settings import TimeoutOverrides
from llmtool.templates.errors import TemplateError
from llmtool.templates.model import NAME, TemplateMeta, VariableSpec, yaml_read_as
from llmtool.templates.render import compile_part
from llmtool.templates.template import Template
from llmtool.validation import ValidationRules

SUFFIX = ".md"
_ASSERTION_KINDS: dict[str, type[BaseModel]] = {
    kind.model_fields["type"].default: kind for kind in get_args(get_args(AssertionSpec)[0])
}
_FENCES = ("---", "...")


def in_folder(path: Path, folder: Path) -> bool:
    """Whether `path`, as written (no link followed), names something inside `folder`."""
    return Path(os.path.abspath(path)).is_relative_to(os.path.abspath(folder))


def leads_outside(path: Path, folder: Path) -> bool:
    """Whether `path` leaves `folder` once symbolic links are followed: the file is a link to
    elsewhere (or a folder on its way is). Templates and datasets of the prompts folder that do are
    refused — a link to ~/.ssh/id_rsa committed to a prompts repository would otherwise be read,
    previewed and sent to a provider. `folder` itself may be a link (a deployment's choice)."""
    try:
        return not path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError, ValueError):  # a loop of links
        return True


def link_refused(folder: Path, what: str) -> str:
    """The sentence a refused link gets: 'the file is a symbolic link leading outside prompts/ …'."""
    return (f"the file is a symbolic link leading outside {folder.resolve().name or folder}/: refused "
            f"(a {what} must be a file inside the prompts folder, not a link to one elsewhere)")


def content_hash(data: bytes) -> str:
    """What a run records as `template_hash`: the first 12 hex digits of the file's sha256."""
    return hashlib.sha256(data).hexdigest()[:12]


class _NoAliasesLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing anchors and aliases."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise _RefusedYAML("YAML aliases (*name) are not allowed in templates", event.start_mark)
        if getattr(event, "anchor", None) is not None:
            raise _RefusedYAML("YAML anchors (&name) are not allowed in templates", event.start_mark)
        return super().compose_node(parent, index)


class _Mark(Protocol):
    """Where in the text: PyYAML's own Mark, or its C loader's."""

    line: int


class _RefusedYAML(yaml.YAMLError):
    def __init__(self, detail: str, mark: _Mark | None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.mark = mark


def load_template(path: Path | str, data: bytes | None = None) -> Template:
    """The template in `path` (its bytes already read, if `data` is given).

    Any failure is a TemplateError naming the file: a bug or a resource limit hit while parsing one
    file must not break the commands that use the other templates.
    """
    path = Path(path)
    try:
        return _load_template(path, data)
    except TemplateError:
        raise
    except Exception as exc:  # RecursionError, OverflowError, a bug of ours…
        raise TemplateError(
            path, None, f"the file cannot be loaded: {type(exc).__name__}: {exc}"[:500]
        ) from None


def _load_template(path: Path, data: bytes | None) -> Template:
    if data is None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise TemplateError(path, None, f"cannot read the file: {exc.strerror or exc}") from None
    name = path.name.removesuffix(SUFFIX)
    if not NAME.match(name):
        raise TemplateError(
            path, None, "the file name must be letters, digits, - or _ (it is the template's name)"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TemplateError(path, line, "the file is not UTF-8 text") from None

    front, body, body_line = _split(path, text)
    raw, lines = _parse_front_matter(path, front)
    try:
        meta = TemplateMeta.model_validate(raw)
    except ValidationError as exc:
        raise _metadata_error(path, exc, lines) from None
    if meta.name is not None and meta.name != name:
        raise TemplateError(
            path, lines.get("name"),
            f"name {meta.name!r} does not match the file name {path.name!r}: the file name is the "
            "template's name (rename the file, or drop the name key)",
        )
    if not body.strip():
        raise TemplateError(path, body_line, "the prompt is empty: write it below the front matter")

    system_part = None
    if meta.system is not None:
        system_part = compile_part(
            meta.system, path=path, first_line=lines.get("system.text", 1), label="system prompt"
        )
    prompt_part = compile_part(body, path=path, first_line=body_line, label="prompt")
    template = Template(
        name=name,
        path=path,
        meta=meta,
        content_hash=content_hash(data),
        source=text,
        prompt_part=prompt_part,
        system_part=system_part,
        lines=lines,
    )
    undeclared = {n: line for n, line in template.used_variables().items() if n not in meta.variables}
    if undeclared:
        first = min(undeclared, key=undeclared.__getitem__)
        declared = ", ".join(meta.variables) or "none"
        raise TemplateError(
            path, undeclared[first],
            f"variable {first!r} is used but not declared under 'variables' (declared: {declared})",
        )
    return template


def _split(path: Path, text: str) -> tuple[str, str, int]:
    """(front matter, body, the body's first line). No front matter: the whole file is the body."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip() != "---":
        return "", text, 1
    for index, line in enumerate(lines[1:], start=1):
        if line.rstrip() in _FENCES:
            return "".join(lines[1:index]), "".join(lines[index + 1 :]), index + 2
    raise TemplateError(path, 1, "the front matter starting here is never closed by a '---' line")


def _parse_front_matter(path: Path, front: str) -> tuple[dict, dict[str, int]]:
    """The front matter as data, and the file line of every key path ('variables.tone' → 9)."""
    loader = _NoAliasesLoader(front)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else {}
    except _RefusedYAML as exc:
        raise TemplateError(path, exc.mark.line + 2 if exc.mark is not None else None, exc.detail) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 2 if mark is not None else None  # +1 for 1-based, +1 for the '---'
        detail = (exc.problem or "").replace("<stream end>", "the end of the front matter")
        if exc.context and exc.context_mark is not None:
            detail = f"{exc.context} on line {exc.context_mark.line + 2}: {detail}"
        raise TemplateError(path, line, f"front matter is not valid YAML: {detail}") from None
    except yaml.YAMLError as exc:
        raise TemplateError(path, None, f"front matter is not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise TemplateError(path, 2, "the front matter must be a mapping of keys (name: value)")
    lines: dict[str, int] = {}
    if node is not None:  # None only for an empty document, whose data is None
        _index(path, node, "", lines)
    return data, lines


def _index(path: Path, node: yaml.Node, prefix: str, lines: dict[str, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            line = key.start_mark.line + 2
            if name in seen:
                raise TemplateError(path, line, f"key {prefix + name!r} appears twice")
            seen.add(name)
            lines[prefix + name] = line
            if isinstance(value, yaml.ScalarNode):
                # Where the text of a scalar starts: block scalars (| and >) start on the next line.
                block = value.style in ("|", ">")
                lines[prefix + name + ".text"] = value.start_mark.line + 2 + (1 if block else 0)
            _index(path, value, f"{prefix}{name}.", lines)
    elif isinstance(node, yaml.SequenceNode):
        for position, item in enumerate(node.value):
            lines[f"{prefix}{position}"] = item.start_mark.line + 2
            _index(path, item, f"{prefix}{position}.", lines)


def _metadata_error(path: Path, exc: ValidationError, lines: dict[str, int]) -> TemplateError:
    parts: list[str] = []
    first_line: int | None = None
    for error in exc.errors():
        loc = _without_tag(error["loc"])
        where = ".".join(str(p) for p in loc)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "string_type" and _is_yaml_scalar(error.get("input")):
            message = "must be text, but " + yaml_read_as(error["input"])
        if error["type"] == "extra_forbidden":
            message = "unknown key (allowed: " + _allowed(error["loc"]) + ")"
        if error["type"] in ("union_tag_invalid", "union_tag_not_found") and loc[:1] == ("assertions",):
            kinds = ", ".join(_ASSERTION_KINDS)
            tag = (error.get("ctx") or {}).get("tag")
            message = f"unknown type {tag!r} (known: {kinds})" if tag is not None else f"needs a type: one of {kinds}"
        line = _line_for(loc, lines)
        first_line = first_line or line
        parts.append(f"{where}: {message}" if where else message)
    return TemplateError(path, first_line, "; ".join(parts))


def _is_yaml_scalar(value: object) -> bool:
    return isinstance(value, (bool, int, float)) or value is None


def _line_for(loc: tuple, lines: dict[str, int]) -> int | None:
    """The line of the deepest key of `loc` found in the file."""
    keys = [str(p) for p in loc]
    while keys:
        line = lines.get(".".join(keys))
        if line is not None:
            return line
        keys.pop()
    return None


def _without_tag(loc: tuple) -> tuple:
    """An assertion's error location without the kind pydantic puts in it: 'assertions.0.total_s'
    (the file's key path) rather than 'assertions.0.latency.total_s'."""
    if len(loc) >= 3 and loc[0] == "assertions" and loc[2] in _ASSERTION_KINDS:
        return (*loc[:2], *loc[3:])
    return loc


def _allowed(loc: tuple) -> str:
    model: type[BaseModel] = TemplateMeta
    if len(loc) >= 4 and loc[0] == "assertions" and loc[2] in _ASSERTION_KINDS:
        model = _ASSERTION_KINDS[loc[2]]
    elif len(loc) >= 3 and loc[0] == "variables":
        model = VariableSpec
    elif len(loc) >= 2 and loc[0] == "validation":
        model = ValidationRules
    elif len(loc) >= 2 and loc[0] == "timeouts":
        model = TimeoutOverrides
    names = [field.alias or name for name, field in model.model_fields.items()]
    return ", ".join(names)
