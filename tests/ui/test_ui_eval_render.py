"""The Evaluate tab's render functions, without a browser: charts, the comparison and its diff, the
pickers, the table against a baseline and with repeats, a stored evaluation as a report, a cell's
detail, permalinks, and the order of a page update's outputs."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from llmtool.evaluation import CaseResult, EvalReport
from llmtool.evaluation.assertions import AssertionResult
from llmtool.evaluation.baseline import Cell, compare, template_diff
from llmtool.events import Metrics
from llmtool.store import CellAssertion, CellRun, EvaluationRecord, RunRecord
from llmtool.store.evaluation_queries import StoredCell
from llmtool.ui.eval_charts import ChartClock, charts_markdown
from llmtool.ui.eval_compare import (
    LAST,
    NONE,
    baseline_choices,
    comparison_markdown,
    default_baseline,
    diff_markdown,
    live_cells,
    running_comparison,
)
from llmtool.ui.eval_detail import PICK_A_CELL, cell_detail
from llmtool.ui.eval_links import evaluation_link, link_markdown, linked, run_link
from llmtool.ui.eval_stored import natural, report_of
from llmtool.ui.eval_table import NOT_RUN, PENDING, matrix, repeated_text, summary_markdown
from llmtool.ui.eval_update import OUTPUTS, EvalUpdate, cleared_detail, shown

BASE = {"template": "classify", "template_hash": "h2", "line": 2}


def result(case: str, model: str = "demo:a", status: str = "passed", **extra) -> CaseResult:
    return CaseResult(case_id=case, model=model, status=status, **BASE, **extra)


def report(*results: CaseResult, cases=("#1", "#2", "#10"), models=("demo:a", "demo:b"), repeats=1) -> EvalReport:
    return EvalReport(template="classify", template_hash="h2", dataset="cases.csv", models=list(models),
                      case_ids=list(cases), results=list(results), evaluation_id="cur", repeats=repeats)


def cell(case: str, model: str, passed: bool, reason: str = "", latency: float | None = 1.0, tokens: int = 10,
         cost: float | None = 0.001) -> Cell:
    return Cell(case_id=case, model=model, passed=passed, reason=reason, latency=latency, output_tokens=tokens,
                input_tokens=10, cost_usd=cost)


BEFORE = [cell("#1", "demo:a", True), cell("#1", "demo:b", True, cost=None),
          cell("#2", "demo:a", False, "expected to contain 'spam'"), cell("#2", "demo:b", False, "nope"),
          cell("gone", "demo:a", True)]
NOW = [cell("#1", "demo:a", False, "expected to contain 'ham'", latency=1.5, tokens=14, cost=0.0015),
       cell("#1", "demo:b", True, latency=1.75, tokens=18, cost=0.002),
       cell("#2", "demo:a", True, latency=0.5, tokens=8, cost=0.0005), cell("#2", "demo:b", False, "nope"),
       cell("new", "demo:a", True)]


def comparison(diff: str = ""):  # type: ignore[no-untyped-def]
    return compare(NOW, BEFORE, template="classify", dataset="cases.csv", evaluation_id="cur", baseline_id="base",
                   template_hash="h2", baseline_template_hash="h1", template_diff=diff,
                   diff_note="" if diff else "same template version (h2)")


# -- charts ---------------------------------------------------------------------------------------
def test_the_three_charts_are_one_markdown_html_block_with_their_labels() -> None:
    shown_report = report(result("#1", latency=0.5, cost_usd=0.001, run_id="r1"),
                          result("#1", "demo:b", "failed", latency=2.0, run_id="r2"),
                          result("#2", latency=0.7, cost_usd=0.002, run_id="r3"))
    text = charts_markdown(shown_report, comparison())
    assert text.count("<svg") == 3 and text.count("</svg>") == 3
    assert not re.search(r"\n\s*\n", text)  # no blank line: Markdown never reads text inside as Markdown
    for label in ("Pass rate per model", "Latency per model", "Cost per model", "baseline", "this version",
                  "demo:a", "demo:b", "$0.003"):
        assert label in text
    assert "<script" not in text and "style=" not in text


def test_charts_escape_a_hostile_model_name() -> None:
    text = charts_markdown(report(result("#1", '<img src=x onerror="alert(1)">'),
                                  models=['<img src=x onerror="alert(1)">']))
    assert "<img" not in text and "&lt;img" in text


@pytest.mark.parametrize(("times", "due"), [((0.0, 0.2, 0.49, 0.5, 0.6, 1.01), [True, False, False, True, False,
                                                                                 True])])
def test_the_chart_clock_allows_two_redraws_a_second(times, due) -> None:
    clock = ChartClock()
    assert [clock.due(t) for t in times] == due


# -- the comparison -------------------------------------------------------------------------------
def test_the_comparison_says_what_changed_per_model_and_per_cell() -> None:
    text = comparison_markdown(comparison())
    lines = text.splitlines()
    assert lines[0] == "**Compared with** [evaluation base](?evaluation=base) · template @h1 → @h2"
    assert lines[2] == "**▼ regressed 1 · ▲ fixed 1 · 1 still failing · 1 still passing · 1 new · 1 removed**"
    rows = [line for line in lines if line.startswith("| demo:")]
    assert rows == [
        "| demo:a | 67% → 67% | ▲1 ▼1 | ±0 | +2 | ±0 |",  # #1: +0.5 s, +4 tok, +$0.0005; #2: −0.5 s, −2, −$0.0005
        "| demo:b | 50% → 50% | ▲0 ▼0 | +0.38 s | +8 | ±0 (1 unknown) |",
    ]
    changed = lines[lines.index("**Changed cells**") + 2:]
    assert changed == [
        "- ▼ regressed · #1 × demo:a: expected to contain 'ham' · Δ +0.50 s, +4 tok, +$0.000500",
        "- ▲ fixed · #2 × demo:a (was: expected to contain 'spam') · Δ −0.50 s, −2 tok, −$0.000500",
        "- new · new × demo:a",
        "- removed · gone × demo:a",
    ]


def test_no_change_is_said_and_user_text_is_escaped() -> None:
    same = compare([cell("<b>x</b>", "m", True)], [cell("<b>x</b>", "m", True)], baseline_id="b", template_hash="h",
                   baseline_template_hash="h")
    text = comparison_markdown(same)
    assert "No verdict changed." in text and "same template version @h" in text and "<b>" not in text


def test_the_diff_is_a_fenced_diff_longer_than_any_backticks_inside() -> None:
    diff = template_diff("Classify: {{ text }}\n", "Classify ```briefly```: {{ text }}\n", "classify @ h1",
                         "classify @ h2")
    text = diff_markdown(comparison(diff))
    assert text.startswith("**Template @h1 → @h2**\n\n````diff\n--- classify @ h1")
    assert "+Classify ```briefly```: {{ text }}" in text and text.endswith("\n````")
    assert diff_markdown(comparison()) == "_No diff: same template version (h2)._"


def test_a_running_evaluation_is_compared_only_on_the_cells_that_ran() -> None:
    partial = report(result("#1", status="failed", problems=["expected to contain 'ham'"]))
    record = EvaluationRecord(id="base", template="classify", template_hash="h1", dataset="cases.csv",
                              dataset_hash="d", models=["demo:a"])
    running = running_comparison(partial, record, BEFORE)
    assert [(c.case_id, c.model, c.change) for c in running.cells] == [("#1", "demo:a", "regressed")]


def test_live_cells_pass_only_when_every_repeat_passed() -> None:
    cells = live_cells([result("#1", repeat=1, latency=1.0, cost_usd=0.001),
                        result("#1", status="failed", problems=["flaky"], repeat=2, latency=3.0, cost_usd=0.003),
                        result("#2", latency=2.0, cost_usd=None)])
    assert [(c.case_id, c.passed, c.reason, c.latency) for c in cells] == [("#1", False, "flaky", 2.0),
                                                                          ("#2", True, "", 2.0)]
    assert cells[0].cost_usd == pytest.approx(0.002) and cells[1].cost_usd is None


def test_the_baseline_picker_offers_pinned_last_none_then_the_others() -> None:
    records = [EvaluationRecord(id=i, template="classify", template_hash="h", dataset="cases.csv", dataset_hash="d",
                                models=[], status=status, created_at=1_800_000_000, name=name)
               for i, status, name in (("cur", "completed", None), ("old", "stopped", "v1"))]
    offered = baseline_choices(records, current_id="cur", pinned="nightly")
    assert [value for _, value in offered] == ["nightly", LAST, NONE, "old"]
    assert offered[-1][0].endswith(" · @h · stopped · v1 · old")
    assert default_baseline(records, "cur", "nightly") == "nightly"
    assert default_baseline(records, "cur") == NONE  # the other one did not complete
    assert default_baseline(records, "old") == LAST


# -- the table ------------------------------------------------------------------------------------
def test_the_table_marks_the_changes_and_keeps_only_changed_rows() -> None:
    shown_report = report(result("#1", status="failed", problems=["expected to contain 'ham'"]), result("#1", "demo:b"),
                          result("#2"), result("#2", "demo:b", "failed", problems=["nope"]), result("#10"))
    changes = {(c.case_id, c.model): c.change for c in comparison().cells}
    _, rows = matrix(shown_report, changes=changes)
    assert rows[0] == ["#1", "✗ expected to contain 'ham' · ▼ regressed", "✓"]
    assert rows[1] == ["#2", "✓ · ▲ fixed", "✗ nope"]
    _, changed = matrix(shown_report, changes=changes, changed_only=True)
    assert [row[0] for row in changed] == ["#1", "#2"]
    _, unfiltered = matrix(shown_report, changed_only=True)  # nothing to compare with: every row
    assert len(unfiltered) == 3


def test_a_repeated_cell_shows_its_pass_rate_and_spread() -> None:
    runs = [result("#1", repeat=1, latency=1.1), result("#1", repeat=2, latency=1.92),
            result("#1", status="failed", problems=["expected to contain 'x'"], repeat=3, latency=1.5)]
    assert repeated_text(runs, 3) == "2/3 ⚠ expected to contain 'x'"
    assert repeated_text(runs[:2], 3, running=True) == "2/2 ✓ 1.10–1.92 s · 1 more running"
    assert repeated_text(runs[:2], 3) == "2/2 ✓ 1.10–1.92 s · 1 not run"
    assert repeated_text([], 3, running=True) == PENDING and repeated_text([], 3) == NOT_RUN
    fast = [result("#1", repeat=1, latency=0.0012), result("#1", repeat=2, latency=0.0018)]
    assert repeated_text(fast, 2) == "2/2 ✓ 0.00 s"  # not '0.00–0.00 s'
    assert repeated_text([result("#1", status="error", error="timed out")] * 2, 2) == "0/2 ✗ timed out"
    _, rows = matrix(report(*runs, cases=("#1",), models=("demo:a",), repeats=3))
    assert rows == [["#1", "2/3 ⚠ expected to contain 'x'"]]
    _, failures = matrix(report(*runs, cases=("#1",), models=("demo:a",), repeats=3), failures_only=True)
    assert failures == rows  # a flaky cell is a failure


def test_the_summary_counts_runs_and_flaky_cases_with_repeats() -> None:
    runs = [result("#1", repeat=1), result("#1", status="failed", problems=["x"], repeat=2)]
    text = summary_markdown(report(*runs, cases=("#1",), models=("demo:a",), repeats=2), "prompts/datasets/c.csv")
    assert "× 2 runs each" in text.splitlines()[0]
    assert text.splitlines()[-1] == "| demo:a | 1/2 runs | 1 | 0 | – | 0→0 | unknown | 1 |"


# -- a stored evaluation --------------------------------------------------------------------------
def test_a_stored_evaluation_becomes_a_report_of_its_runs() -> None:
    record = EvaluationRecord(id="e1", template="classify", template_hash="h", dataset="cases.csv", dataset_hash="d",
                              models=["demo:a"], repeats=2)
    judged = CellAssertion(type="judge", label="judge: polite", passed=False, score=0.4, reason="rude", run_id="g1",
                           model="demo:grader", cost_usd=0.0)
    cells = [
        StoredCell(case_id="#10", model="demo:a", passed=True, run_id="r3"),  # kept before runs were
        StoredCell(case_id="#2", model="demo:a", passed=False, reason="1/2 runs passed; rude", run_id="r1", runs=[
            CellRun(repeat=1, run_id="r1", status="passed", latency=1.0),
            CellRun(repeat=2, run_id="r2", status="failed", reason="rude", assertions=[judged], latency=2.0),
        ]),
        StoredCell(case_id="#3", model="demo:a", passed=False, reason="timed out", run_id="r4",
                   runs=[CellRun(run_id="r4", status="error", reason="timed out")]),
    ]
    shown_report = report_of(record, cells)
    assert shown_report.case_ids == ["#2", "#3", "#10"] and shown_report.repeats == 2
    assert [(r.case_id, r.repeat, r.status, r.run_id) for r in shown_report.results] == [
        ("#2", 1, "passed", "r1"), ("#2", 2, "failed", "r2"), ("#3", 1, "error", "r4"), ("#10", 1, "passed", "r3")]
    assert shown_report.results[1].problems == ["rude"] and shown_report.results[1].assertions[0].score == 0.4
    assert shown_report.results[2].error == "timed out"
    assert sorted(["#10", "#2", "a", "#1"], key=natural) == ["#1", "#2", "#10", "a"]


# -- one cell -------------------------------------------------------------------------------------
def stored_run(run_id: str = "r2") -> RunRecord:
    return RunRecord(id=run_id, model="demo:a", status="completed", text="Go away.", reasoning="Be terse.",
                     request={"model": "demo:a", "messages": [{"role": "user", "content": "Greet *Ada*"}]},
                     metrics=Metrics(total_time=2.0, time_to_first_token=0.5, input_tokens=3, output_tokens=2,
                                     cost_usd=0.0))


def test_a_cell_opens_on_its_failing_run_with_every_check_and_links() -> None:
    judge = AssertionResult(type="judge", label="judge: polite | kind", passed=False, score=0.4, reason="rude",
                            run_id="g1", model="demo:grader", cost_usd=0.0001)
    runs = [result("#2", repeat=1, run_id="r1"),
            result("#2", status="failed", problems=["rude"], repeat=2, run_id="r2", assertions=[judge])]
    detail = cell_detail("#2", "demo:a", runs, stored_run())
    assert detail.title.startswith("**#2 × demo:a** · run 2 of 2 · ✗ failed: rude · "
                                   f"[Open in History]({run_link('r2')}) · run `r2`")
    assert "Runs (1/2 passed): [1 ✓](?run=r1) · [2 ✗](?run=r2)" in detail.title
    assert "Greet *Ada*" in detail.request and "**Messages** · 1" in detail.request
    assert "Go away." in detail.answer and "Be terse." in detail.answer  # the reasoning, collapsed above
    assert "**Assertions** · 0 of 1 passed" in detail.checks
    assert "| ✗ | judge: polite \\| kind ([grading run](?run=g1)) | 0.40 | rude · grader demo:grader · $0.000100 |" \
        in detail.checks
    assert "total 2.0" in detail.checks or "2.0 s" in detail.checks


def test_a_cell_without_its_stored_run_says_so_and_shows_the_evaluations_copy() -> None:
    detail = cell_detail("#1", "m", [result("#1", "m", output="<b>hi</b>", latency=0.25)])
    assert "not in the run store" in detail.request
    assert detail.answer == "```text\n<b>hi</b>\n```"
    assert "0.25 s total" in detail.checks and "cost unknown" in detail.checks
    assert cell_detail("#1", "m", []).title == "**#1 × m** · not run (yet)"
    assert cleared_detail().title == PICK_A_CELL


# -- links and the update -------------------------------------------------------------------------
@pytest.mark.parametrize(("query", "found"), [
    ({"evaluation": "6f2a9c01d4e7"}, ("evaluation", "6f2a9c01d4e7")),
    ({"run": " abc_1-2 "}, ("run", "abc_1-2")),
    ({"evaluation": "x", "run": "y"}, ("evaluation", "x")),
    ({"evaluation": "../etc/passwd"}, None),
    ({"evaluation": "a" * 65}, None),
    ({}, None),
])
def test_the_page_address_names_what_to_open(query, found) -> None:
    assert linked(SimpleNamespace(query_params=query)) == found  # type: ignore[arg-type]
    assert linked(None) is None


def test_links_are_relative_to_the_page() -> None:
    assert evaluation_link("e1") == "?evaluation=e1" and run_link("r1") == "?run=r1"
    assert link_markdown("e1") == "[Link to this evaluation](?evaluation=e1) · id `e1`"


def test_an_update_has_one_value_per_output_in_order() -> None:
    update = shown(report(result("#1")), comparison(), dataset_name="cases.csv")
    outputs = update.outputs()
    assert len(outputs) == len(OUTPUTS) == len(EvalUpdate().outputs())
    assert outputs[OUTPUTS.index("link")] == link_markdown("cur")
    assert outputs[OUTPUTS.index("charts")].count("<svg") == 3
    assert outputs[OUTPUTS.index("comparison")].startswith("**Compared with**")
    assert outputs[OUTPUTS.index("compared")] is update.compared
    forgotten = shown(report(result("#1")), None, dataset_name="c", why_no_comparison="none").outputs()
    assert forgotten[OUTPUTS.index("compared")] is None and forgotten[OUTPUTS.index("comparison")] == "none"
