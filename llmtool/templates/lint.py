"""`llmtool prompts check`: everything that can be wrong with the templates directory, found offline.

Loading already refuses bad YAML, unknown keys, bad validation rules, Jinja syntax errors and
undeclared variables. Linting adds what a loadable template can still get wrong: declared variables
the text never uses, text that fails when rendered with its defaults (or sample values) or with any
of its `choice` values or either value of a boolean (the other variables at their defaults), a
default model nobody knows, and example datasets (`datasets/<template>[.anything].csv|jsonl`) whose
rows do not fit their template or do not render.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from llmtool.catalog import Catalog
from llmtool.errors import InvalidRequestError, MissingKeyError, UnknownModelError
from llmtool.evaluation.dataset import DATASET_SUFFIXES, Dataset, DatasetError, load_dataset
from llmtool.templates.errors import TemplateError
from llmtool.templates.model import Value
from llmtool.templates.registry import TemplateRegistry
from llmtool.templates.template import Template

DATASETS_DIR = "datasets"


@dataclass
class CheckReport:
    templates: list[str] = field(default_factory=list)  # names that passed
    datasets: list[Path] = field(default_factory=list)  # files that passed
    problems: list[TemplateError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def lint_template(template: Template, catalog: Catalog | None = None) -> list[TemplateError]:
    """Problems of a template that loads; [] when it is clean."""
    problems: list[TemplateError] = []
    used = template.used_variables()
    for name in template.variables:
        if name not in used:
            problems.append(TemplateError(
                template.path, template.variable_line(name),
                f"variable {name!r} is declared but never used in the prompt or system prompt",
            ))
    samples = {name: spec.sample() for name, spec in template.variables.items()}
    seen: set[str] = set()
    for values, about in _variants(template, samples):
        try:
            template.to_run_request(values, model=template.model or "demo:assistant")
        except TemplateError as error:
            if error.message not in seen:  # the same failure for every variant: report it once
                seen.add(error.message)
                problems.append(TemplateError(error.path, error.line, f"{error.detail} ({about})"))
    if catalog is not None:
        graders = [(template.meta.grader, "grader")]
        graders += [(spec.model, f"assertions.{i}.model") for i, spec in enumerate(template.assertions)
                    if spec.type == "judge"]
        for grader, key in graders:
            if grader is None:
                continue
            try:
                catalog.resolve(grader)
            except MissingKeyError:
                pass
            except UnknownModelError as error:
                problems.append(TemplateError(template.path, template.lines.get(key), f"grader: {error.message}"))
    if catalog is not None and template.model is not None:
        try:
            catalog.resolve(template.model).check_effort(template.meta.reasoning_effort)
        except MissingKeyError:
            pass  # known model, just no key here: fine for CI
        except UnknownModelError as error:
            problems.append(TemplateError(template.path, template.lines.get("model"), error.message))
        except InvalidRequestError as error:
            line = template.lines.get("reasoning_effort")
            problems.append(TemplateError(template.path, line, error.message))
    return problems


def _variants(template: Template, samples: dict[str, Value]) -> list[tuple[dict[str, Value], str]]:
    """The values to render with: defaults/samples, then each choice and each boolean value."""
    variants = [(samples, "rendering with default or sample values")]
    for name, spec in template.variables.items():
        options: list[Value] = []
        if spec.type == "choice":
            options = list(spec.choices or [])
        elif spec.type == "boolean":
            options = [True, False]
        for option in options:
            if option != samples[name]:
                shown = str(option).lower() if isinstance(option, bool) else option
                variants.append(({**samples, name: option}, f"rendering with {name}={shown}"))
    return variants


def _render_cases(template: Template, dataset: Dataset) -> list[TemplateError]:
    """A problem for each case of a (valid) dataset that does not render."""
    problems: list[TemplateError] = []
    for case in dataset.cases:
        try:
            template.to_run_request(case.values, model=template.model or "demo:assistant")
        except TemplateError as error:
            problems.append(TemplateError(
                dataset.path, case.line, f"case {case.id!r} does not render: {error.message}"
            ))
    return problems


def check_prompts(directory: Path | str, catalog: Catalog | None = None) -> CheckReport:
    """Load and lint every template in `directory`, then check its example datasets."""
    registry = TemplateRegistry(directory)
    report = CheckReport()
    if not registry.directory.is_dir():
        report.problems.append(TemplateError(
            registry.directory, None, "the templates directory does not exist"
        ))
        return report
    templates: dict[str, Template] = {}
    for entry in registry.entries():
        if entry.error is not None:
            report.problems.append(entry.error)
            continue
        assert entry.template is not None
        templates[entry.name] = entry.template
        found = lint_template(entry.template, catalog)
        report.problems.extend(found)
        if not found:
            report.templates.append(entry.name)
    datasets = registry.directory / DATASETS_DIR
    if datasets.is_dir():
        for path in sorted(datasets.iterdir()):
            if path.suffix.lower() not in DATASET_SUFFIXES:
                continue
            template_name = path.name.split(".")[0]
            template = templates.get(template_name)
            if template is None:
                if template_name not in registry.names():
                    report.problems.append(TemplateError(
                        path, None,
                        f"no template {template_name!r} for this dataset (datasets are named "
                        "after their template: <template>.csv or <template>.<label>.jsonl)",
                    ))
                continue  # a broken template is reported once, above
            try:
                dataset = load_dataset(path, template)
            except DatasetError as error:
                report.problems.extend(
                    TemplateError(None, None, problem) for problem in error.problems
                )
                continue
            found = _render_cases(template, dataset)
            report.problems.extend(found)
            if not found:
                report.datasets.append(path)
    return report
