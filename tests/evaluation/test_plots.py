"""The SVG charts: well-formed XML, accessible (role, title, desc, labels), every text escaped, no
style or script, deterministic, and sensible with no model, one, many, and unknown values."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from llmtool.evaluation.baseline import Cell, compare
from llmtool.evaluation.plots import cost_chart, latency_chart, pass_rate_chart, report_charts
from llmtool.evaluation.results import CaseResult, EvalReport

NS = "{http://www.w3.org/2000/svg}"
HOSTILE = 'evil:<script>alert("x")</script>&\'--]]>'


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # raises on anything unescaped
    assert root.tag == f"{NS}svg" and root.get("role") == "img"
    assert root[0].tag == f"{NS}title" and root[1].tag == f"{NS}desc"
    for element in root.iter():
        assert element.get("style") is None, "no style attribute: a style-src policy drops it"
        assert element.tag not in (f"{NS}style", f"{NS}script", f"{NS}foreignObject")
        assert not any(name.startswith("on") for name in element.attrib)
    return root


def texts(root: ET.Element) -> list[str]:
    """What each <text> shows (a <title> inside it is its tooltip, not shown)."""
    return [(t.text or "") + "".join(child.tail or "" for child in t) for t in root.iter(f"{NS}text")]


def test_pass_rates_with_a_baseline_are_grouped_bars() -> None:
    svg = pass_rate_chart({"demo:a": 0.8, "demo:b": 0.5, "demo:c": None}, baseline={"demo:a": 0.6, "demo:b": 0.5})
    root = parse(svg)
    labels = texts(root)
    assert {"demo:a", "demo:b", "demo:c", "80%", "60%", "50%", "no cells", "baseline", "this version"} <= set(labels)
    assert root[0].text == "Pass rate per model"
    assert root[1].text == ("demo:a: baseline 60%, this version 80%; demo:b: baseline 50%, this version 50%; "
                            "demo:c: baseline no cells, this version no cells")
    bars = [r for r in root.iter(f"{NS}rect") if r.get("height") == "22"]
    assert len(bars) == 4  # two models × two versions; none for "no cells"
    widths = [float(r.get("width", 0)) for r in bars]
    assert widths[1] == pytest.approx(widths[0] * 0.8 / 0.6, rel=1e-2)  # demo:a: current bar 80/60 of baseline


def test_pass_rates_without_a_baseline_have_no_legend() -> None:
    root = parse(pass_rate_chart({"demo:a": 1.0}))
    assert "baseline" not in texts(root) and "100%" in texts(root)


def test_latency_boxes_and_points() -> None:
    root = parse(latency_chart({"demo:a": [1.2, 0.9, 1.4, 3.0, 2.2], "demo:b": [], "demo:c": [0.4]}))
    labels = texts(root)
    assert "median 1.40 s" in labels and "median 0.40 s" in labels and "no measurements" in labels
    assert {"0 s", "1 s", "2 s", "3 s"} <= set(labels)
    assert len(list(root.iter(f"{NS}circle"))) == 6  # every measurement is a point
    assert "demo:a: 5 runs, min 0.90 s, median 1.40 s, max 3.00 s" in (root[1].text or "")


def test_costs_say_unknown_in_words() -> None:
    root = parse(cost_chart({"demo:a": 0.0123, "demo:b": None, "demo:c": 0.0}, {"demo:a": 2}))
    labels = texts(root)
    assert "$0.0123 + 2 unknown" in labels and "cost unknown" in labels and "$0" in labels
    assert "$0.01" in labels  # an axis tick
    assert root[1].text is not None and "demo:b: cost unknown" in root[1].text
    # all unknown: no bars, still a chart
    only_unknown = parse(cost_chart({"x": None}))
    assert "cost unknown" in texts(only_unknown) and not list(only_unknown.iter(f"{NS}rect"))


@pytest.mark.parametrize("chart", [
    lambda: pass_rate_chart({}), lambda: latency_chart({}), lambda: cost_chart({}),
])
def test_no_models(chart) -> None:  # type: ignore[no-untyped-def]
    root = parse(chart())
    assert "No results yet." in texts(root)


def test_every_text_is_escaped_and_the_name_survives() -> None:
    for svg in (pass_rate_chart({HOSTILE: 0.5}, baseline={HOSTILE: 0.25}, title=HOSTILE),
                latency_chart({HOSTILE: [1.0]}), cost_chart({HOSTILE: 1.0})):
        assert "<script>" not in svg and "]]>" not in svg
        root = parse(svg)
        titles = [t.text for t in root.iter(f"{NS}title")]
        assert HOSTILE in titles  # the full name, as a tooltip and for assistive technology
        assert any(text.startswith("evil:<script>") for text in texts(root))  # shown cut to fit
    # characters XML 1.0 cannot hold are replaced, not written
    root = parse(cost_chart({"bad\x00\x1bname\ud800": 1.0}))
    assert "bad\ufffd\ufffdname\ufffd" in texts(root)


def test_many_models_grow_the_chart_and_output_is_deterministic() -> None:
    rates = {f"provider:model-{i}": i / 20 for i in range(20)}
    svg = pass_rate_chart(rates)
    assert svg == pass_rate_chart(dict(rates))
    root = parse(svg)
    assert int(root.get("height", 0)) > 20 * 28
    assert all(f"provider:model-{i}" in texts(root) for i in range(20))


def test_report_charts_with_a_comparison() -> None:
    def result(case: str, model: str, passed: bool, latency: float, cost: float | None) -> CaseResult:
        return CaseResult(case_id=case, line=2, model=model, status="passed" if passed else "failed",
                          latency=latency, cost_usd=cost, run_id=f"{case}{model}", template="t", template_hash="h")

    results = [result("a", "m1", True, 1.0, 0.01), result("b", "m1", False, 2.0, None),
               result("a", "m2", True, 0.5, 0.002), result("b", "m2", True, 0.7, 0.003)]
    report = EvalReport(template="t", template_hash="h", dataset="d.csv", models=["m1", "m2"], case_ids=["a", "b"],
                        results=results)
    comparison = compare([Cell.from_result(r) for r in results],
                         [Cell(case_id="a", model="m1", passed=False), Cell(case_id="b", model="m1", passed=False),
                          Cell(case_id="a", model="m2", passed=True)])
    charts = report_charts(report, comparison)
    assert set(charts) == {"pass_rate", "latency", "cost"}
    rates = parse(charts["pass_rate"])
    assert rates[1].text == "m1: baseline 0%, this version 50%; m2: baseline 100%, this version 100%"
    cost = parse(charts["cost"])
    assert "$0.01 + 1 unknown" in texts(cost) and "$0.005" in texts(cost)
    assert "median 1.50 s" in texts(parse(charts["latency"]))
