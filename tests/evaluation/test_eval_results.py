"""Reports: summary, matrix for a table widget, failures filter, CSV/JSONL export."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from llmtool.errors import InvalidRequestError
from llmtool.evaluation import CaseResult, EvalReport


def result(case_id: str, model: str, status: str, **extra: object) -> CaseResult:
    return CaseResult(
        case_id=case_id, line=2, model=model, status=status, template="t", template_hash="abc123def456",
        latency=1.0, input_tokens=10, output_tokens=5, cost_usd=0.01, values={"word": case_id}, **extra,
    )


@pytest.fixture
def report() -> EvalReport:
    return EvalReport(
        template="t", template_hash="abc123def456", dataset="cases.csv",
        models=["a:x", "b:y"], case_ids=["one", "two"],
        results=[
            result("one", "a:x", "passed", output="fine"),
            result("one", "b:y", "passed", output="fine"),
            result("two", "a:x", "failed", problems=["expected to contain 'z'", "too long"], output="bad, \"quoted\"\nanswer"),
            result("two", "b:y", "error", error="rate limited (HTTP 429)", error_kind="rate_limited"),
        ],
    )


def test_summary(report: EvalReport) -> None:
    a, b = report.summary()
    assert (a.model, a.cases, a.passed, a.failed, a.errors) == ("a:x", 2, 1, 1, 0)
    assert (b.passed, b.errors, b.input_tokens, b.output_tokens) == (1, 1, 20, 10)
    assert a.mean_latency == 1.0 and a.cost_usd == pytest.approx(0.02) and a.pass_rate == 0.5
    assert not report.ok


def test_matrix_and_failures_filter(report: EvalReport) -> None:
    headers, rows = report.matrix()
    assert headers == ["case", "a:x", "b:y"]
    assert rows[0] == ["one", "✓ 1.00 s", "✓ 1.00 s"]
    assert rows[1] == ["two", "✗ expected to contain 'z'; too long", "! rate limited (HTTP 429)"]
    assert report.matrix(failures_only=True)[1] == [rows[1]]
    assert [r.case_id for r in report.failures()] == ["two", "two"]


def test_csv_export(tmp_path: Path, report: EvalReport) -> None:
    path = report.write(tmp_path / "out.csv")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4
    assert rows[2]["status"] == "failed"
    assert rows[2]["problems"] == "expected to contain 'z'; too long"
    assert rows[2]["output"] == 'bad, "quoted"\nanswer'
    assert rows[0]["template_hash"] == "abc123def456"
    assert json.loads(rows[0]["values"]) == {"word": "one"}


def test_jsonl_export_of_failures_only(tmp_path: Path, report: EvalReport) -> None:
    path = report.write(tmp_path / "out.jsonl", failures_only=True)
    rows = [CaseResult.model_validate_json(line) for line in path.read_text().splitlines()]
    assert rows == report.failures()


def test_export_refuses_other_formats(tmp_path: Path, report: EvalReport) -> None:
    with pytest.raises(InvalidRequestError, match=r"must end in \.csv or \.jsonl"):
        report.write(tmp_path / "out.xlsx")


def test_csv_export_defuses_formulas_and_has_a_bom(tmp_path: Path) -> None:
    hostile = ["=HYPERLINK(\"http://x\")", "+1+1", "-2", "@SUM(A1)", "\tx", "\rx", "plain", "a=b"]
    report = EvalReport(
        template="t", template_hash="abc123def456", dataset="cases.csv", models=["a:x"],
        case_ids=[f"c{i}" for i in range(len(hostile))],
        results=[
            result(f"c{i}", "a:x", "failed", output=text, problems=[text]) for i, text in enumerate(hostile)
        ] ,
    )
    report.results[0] = report.results[0].model_copy(update={"case_id": "=cmd", "latency": -1.5})
    path = report.write(tmp_path / "out.csv")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["output"] for r in rows] == ["'" + h if h[0] in "=+-@\t\r" else h for h in hostile]
    assert rows[1]["problems"] == "'+1+1"
    assert rows[0]["case_id"] == "'=cmd"
    assert rows[0]["latency"] == "-1.5"  # numbers are not text: left alone
    jsonl = report.write(tmp_path / "out.jsonl")
    assert [json.loads(line)["output"] for line in jsonl.read_text().splitlines()] == hostile
