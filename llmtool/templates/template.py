"""A loaded template: check values against its variables, render it, turn it into a RunRequest.

    template = registry.get("summarise")
    request = template.to_run_request({"text": "…"}, model="demo:assistant")
    run = service.start(request)       # carries template name + content hash, rules, timeouts
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmtool.errors import InvalidRequestError
from llmtool.evaluation.assertion_kinds import AssertionSpec
from llmtool.providers.base import ReasoningEffort
from llmtool.service.requests import RunRequest
from llmtool.templates.errors import TemplateError
from llmtool.templates.model import TemplateMeta, Value, VariableSpec
from llmtool.templates.render import CompiledPart
from llmtool.validation import ValidationRules


@dataclass(frozen=True)
class RenderedPrompt:
    system: str | None
    prompt: str


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: a UI may cache per template
class Template:
    name: str
    path: Path
    meta: TemplateMeta
    content_hash: str  # sha256 of the file's bytes, first 12 hex digits
    prompt_part: CompiledPart = field(repr=False)
    system_part: CompiledPart | None = field(default=None, repr=False)
    lines: dict[str, int] = field(default_factory=dict, repr=False)  # front-matter key path → line
    source: str = field(default="", repr=False)  # the file's text, stored once per hash with its runs

    # -- what it declares ----------------------------------------------------------------------
    @property
    def description(self) -> str:
        return self.meta.description

    @property
    def model(self) -> str | None:
        return self.meta.model

    @property
    def variables(self) -> dict[str, VariableSpec]:
        return self.meta.variables

    @property
    def rules(self) -> ValidationRules:
        return self.meta.rules()

    @property
    def assertions(self) -> list[AssertionSpec]:
        """Checked on every case's run of an evaluation, besides the case's own."""
        return self.meta.assertions

    @property
    def parts(self) -> list[CompiledPart]:
        return [p for p in (self.system_part, self.prompt_part) if p is not None]

    def used_variables(self) -> dict[str, int]:
        """Every variable name the prompt text reads, with the first line it is read on."""
        uses: dict[str, int] = {}
        for part in self.parts:
            for name, line in part.uses.items():
                uses.setdefault(name, line)
        return uses

    def variable_line(self, name: str) -> int | None:
        return self.lines.get(f"variables.{name}") or self.lines.get("variables")

    # -- values --------------------------------------------------------------------------------
    def check_values(self, values: Mapping[str, Any]) -> tuple[dict[str, Value | None], list[str]]:
        """(values converted to their types with defaults filled in, problems). `None` = not given.

        Problems say what is wrong without saying where, so a dataset can prefix its own line.
        """
        bound, found = self._check(values)
        return bound, [problem for _, problem in found]

    def bind(self, values: Mapping[str, Any] | None = None) -> dict[str, Value | None]:
        """Values ready to render, or a TemplateError naming this file and the variable's line."""
        bound, found = self._check(values or {})
        if found:
            raise TemplateError(
                self.path, self.variable_line(found[0][0]), "; ".join(p for _, p in found)
            )
        return bound

    def _check(self, values: Mapping[str, Any]) -> tuple[dict[str, Value | None], list[tuple[str, str]]]:
        found: list[tuple[str, str]] = []
        declared = ", ".join(self.variables) or "no variables"
        for name in values:
            if name not in self.variables:
                found.append((name, f"unknown variable {name!r}: template {self.name!r} declares {declared}"))
        bound: dict[str, Value | None] = {}
        for name, spec in self.variables.items():
            raw = values.get(name)
            if raw is None:
                if spec.is_required:
                    about = f" ({spec.description})" if spec.description else ""
                    found.append((name, f"missing required variable {name!r}{about}"))
                bound[name] = spec.default
                continue
            try:
                bound[name] = spec.coerce(raw)
            except ValueError as exc:
                found.append((name, f"variable {name!r} {exc}"))
        return bound, found

    # -- output --------------------------------------------------------------------------------
    def render(self, values: Mapping[str, Any] | None = None) -> RenderedPrompt:
        bound = self.bind(values)
        system = self.system_part.render(bound) if self.system_part is not None else None
        return RenderedPrompt(system=system or None, prompt=self.prompt_part.render(bound))

    def to_run_request(
        self,
        values: Mapping[str, Any] | None = None,
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_output_tokens: int | None = None,
        reasoning_effort: ReasoningEffort | None = None,
    ) -> RunRequest:
        """The request for one run: rendered text, the template's parameters, rules and timeouts,
        its name and content hash. Arguments given here override the template's defaults."""
        rendered = self.render(values)
        if not rendered.prompt:
            raise TemplateError(self.path, self.prompt_part.first_line, "the rendered prompt is empty")
        meta = self.meta
        try:
            request = RunRequest.parse({
                "model": model or meta.model,
                "prompt": rendered.prompt,
                "system": rendered.system,
                "temperature": meta.temperature if temperature is None else temperature,
                "max_output_tokens": meta.max_output_tokens if max_output_tokens is None else max_output_tokens,
                "reasoning_effort": reasoning_effort or meta.reasoning_effort,
                "cache_prompt": meta.cache_prompt,
                "timeouts": meta.timeouts,
                "validation": self.rules,
                "template": self.name,
                "template_hash": self.content_hash,
                "variables": self.bind(values),
            }, allow_python_rules=True)  # the template file is the server's own
        except InvalidRequestError as exc:
            raise TemplateError(self.path, None, exc.message) from None
        request._template_source = self.source
        return request
