"""What a checking process can be asked to do: a fixed table of tasks, nothing else is ever run.

Each task takes its arguments and `report(what, new_problems)`, which it calls before each stage of
the work, so that a task stopped at its time limit can say which stage ran too long and keep the
problems found before it. The same functions run in the server's own process when no process can
be started (see `llmtool.checks.pool`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmtool.evaluation.assertion_kinds import TextAssertion, Verdict
    from llmtool.evaluation.dataset import Expectations
    from llmtool.templates.template import Template
    from llmtool.validation import ValidationRules

Report = Callable[..., None]
Task = Callable[..., Any]


def run_stages(stages: Iterable[tuple[str, Callable[[], list[str]]]], report: Report) -> list[str]:
    problems: list[str] = []
    reported = 0
    for what, run in stages:
        report(what, problems[reported:])
        reported = len(problems)
        problems.extend(run())
    return problems


def check_text(rules: ValidationRules, text: str, *, report: Report) -> list[str]:
    return run_stages(rules.stages(text), report)


def check_expectations(expect: Expectations, text: str, *, report: Report) -> list[str]:
    return run_stages(expect.stages(text), report)


def check_assertion(assertion: TextAssertion, text: str, *, report: Report) -> Verdict:
    """One text assertion of `llmtool.evaluation.assertions`: (passed, score, reason)."""
    report(f"the assertion {assertion.label}", [])
    return assertion.verdict(text)


def load_dataset(path: Path, template: Template, *, report: Report) -> tuple[str, Any]:
    """("rows", (content hash, [(id, line, values, contains, regex, json, assertions), …])) or
    ("problems", (problems, omitted)): plain tuples unpickle in C, 5,000 Case models would hold the
    loop ~0.2 s (and a DatasetError does not pickle). `assertions`: the row's assert_* specs, a tuple
    of assertion models (most rows have none: an empty tuple costs nothing)."""
    from llmtool.evaluation.dataset import DatasetError
    from llmtool.evaluation.dataset import load_dataset as load

    report("the dataset", [])
    try:
        dataset = load(path, template)
    except DatasetError as error:
        return "problems", (error.problems, error.omitted)
    rows = [(c.id, c.line, c.values, c.expect.contains, c.expect.regex, c.expect.json_valid, tuple(c.assertions))
            for c in dataset.cases]
    return "rows", (dataset.content_hash, rows)


def echo(value: Any, seconds: float = 0.0, *, report: Report) -> Any:
    """For tests and the benchmark: `value` back, after `seconds` of busy CPU work."""
    import time

    report("the echo", [])
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass
    return value


TASKS: dict[str, Task] = {
    "check_text": check_text,
    "check_expectations": check_expectations,
    "check_assertion": check_assertion,
    "load_dataset": load_dataset,
    "echo": echo,
}
