"""The Evaluate tab's wording: progress line, cells, the cases × models table, summary, names."""

from __future__ import annotations

from datetime import datetime

import pytest

from llmtool.evaluation import CaseResult, EvalReport
from llmtool.ui.eval_table import (
    NOT_RUN,
    PENDING,
    cell_text,
    dataset_problems_markdown,
    export_stem,
    matrix,
    progress_line,
    summary_markdown,
)

BASE = {"template": "classify", "template_hash": "3cf76e7a6320", "line": 2}


def result(case: str, model: str, status: str = "passed", **extra) -> CaseResult:
    return CaseResult(case_id=case, model=model, status=status, **BASE, **extra)


def report(*results: CaseResult, cases=("a", "b", "c"), models=("m1", "m2")) -> EvalReport:
    return EvalReport(template="classify", template_hash="3cf76e7a6320", dataset="d.csv", models=list(models),
                      case_ids=list(cases), results=list(results))


@pytest.mark.parametrize(
    ("args", "line"),
    [
        ((12, 40, 10, 3.14, "running"), "Running · 12/40 done · 2 failed · 3.1 s"),
        ((40, 40, 38, 12.0, "done"), "Done · 40/40 · 38 passed · 2 failed · 12 s"),
        ((7, 40, 7, 1.0, "stopped"), "Stopped · 7/40 done · 0 failed · 1.0 s"),
        ((0, 5, 0, 0.0, "running"), "Running · 0/5 done · 0 failed · 0.0 s"),
    ],
)
def test_progress_line(args, line) -> None:
    assert progress_line(*args) == line


@pytest.mark.parametrize(
    ("cell", "text"),
    [
        (result("a", "m", latency=0.4213, input_tokens=271, output_tokens=9, cost_usd=0.00001),
         "✓ 0.42 s · 271→9 tok · $0.0000"),
        (result("a", "m", "failed", problems=["expected to contain 'x'", "too long"], latency=12.3),
         "✗ expected to contain 'x'; too long · 12 s"),
        (result("a", "m", "error", error="local refused the API key (HTTP 401)"),
         "! local refused the API key (HTTP 401)"),
        (result("a", "m"), "✓"),
    ],
)
def test_cell_text(cell, text) -> None:
    assert cell_text(cell) == text


def test_a_missing_cell_is_pending_while_running_and_not_run_after() -> None:
    assert cell_text(None, running=True) == PENDING
    assert cell_text(None) == NOT_RUN


def test_matrix_is_cases_by_models_and_filters_failures() -> None:
    partial = report(
        result("a", "m1"), result("a", "m2"),
        result("b", "m1"), result("b", "m2", "failed", problems=["nope"]),
        result("c", "m1"),
    )
    headers, rows = matrix(partial, running=True)
    assert headers == ["case", "m1", "m2"]
    assert rows == [["a", "✓", "✓"], ["b", "✓", "✗ nope"], ["c", "✓", PENDING]]
    _, failures = matrix(partial, failures_only=True, running=True)
    assert failures == [["b", "✓", "✗ nope"]]  # a pending cell is not a failure
    _, stopped = matrix(partial)
    assert stopped[-1] == ["c", "✓", NOT_RUN]


def test_summary_names_template_version_dataset_and_each_model() -> None:
    text = summary_markdown(
        report(result("a", "m1", latency=1.0, input_tokens=10, output_tokens=2, cost_usd=0.5),
               result("a", "m2", "error", error="boom"), cases=("a",)),
        "prompts/datasets/classify.csv",
    )
    lines = text.splitlines()
    assert lines[0] == "**classify @ 3cf76e7a6320** · prompts/datasets/classify.csv · 1 case × 2 models"
    assert lines[4] == "| m1 | 1/1 | 0 | 0 | 1.00 s | 10→2 | $0.5000 |"
    assert lines[5] == "| m2 | 0/1 | 0 | 1 | – | 0→0 | unknown |"


def test_dataset_problems_name_the_file_the_user_knows() -> None:
    text = dataset_problems_markdown(
        ["/tmp/gradio/abc/bad.csv:1: unknown column 'x'",
         "/tmp/gradio/abc/bad.csv:3: missing required variable 'ticket'"],
        "bad.csv", "/tmp/gradio/abc/bad.csv",
    )
    assert text.splitlines() == [
        "⚠ The dataset bad.csv cannot be used (2 problems):",
        "- bad.csv:1: unknown column 'x'",
        "- bad.csv:3: missing required variable 'ticket'",
    ]


def test_export_names_are_safe_and_carry_the_version() -> None:
    when = datetime(2025, 3, 1, 14, 25, 1)
    assert export_stem(report(), when) == "classify-3cf76e7a6320-20250301-142501"
    odd = report().model_copy(update={"template": "../my prompt", "template_hash": "../x1"})
    assert export_stem(odd, when) == "my_prompt-1-20250301-142501"


def test_export_names_of_two_evaluations_in_the_same_second_differ() -> None:
    when = datetime(2025, 3, 1, 14, 25, 1)
    first, second = export_stem(report(), when, unique="a1b2"), export_stem(report(), when, unique="c3d4")
    assert first == "classify-3cf76e7a6320-20250301-142501-a1b2" and first != second
    assert export_stem(report(), when, unique="../x y") == "classify-3cf76e7a6320-20250301-142501-xy"
