"""`llmtool eval` as a CI gate: `--baseline last|ID|NAME` (or the template's `baseline:`) prints what
an edit fixed and broke, with the template diff, and exits 1 on a regression, 0 otherwise (even with
cases still failing), 2 when there is no baseline to compare with; `--repeat` prints pass rates and
spreads; assertions reach the printed reasons."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llmtool.cli import main
from llmtool.loopback import LoopbackServer, Scenario
from tests.helpers import write_template

FRONT = "---\nmodel: demo:echo\nvariables:\n  word: {}\nEXTRA---\n"
CASES = "id,word,expect_contains\nkeeps,cat,cat\nbreaks,cat,Say\nmends,cat,Tell\nnever,cat,dog\n"


@pytest.fixture
def prompts(prompts_dir: Path) -> Path:
    (prompts_dir.parent / "cases.csv").write_text(CASES, encoding="utf-8")
    return prompts_dir


def version(prompts: Path, body: str, extra: str = "") -> None:
    write_template(prompts, "say", FRONT.replace("EXTRA", extra) + body)


def evaluation_id(err: str) -> str:
    found = re.search(r"kept as evaluation (\w+)", err)
    assert found is not None, err
    return found.group(1)


def test_the_gate_exits_1_on_a_regression_and_0_without(prompts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    version(prompts, "Say {{ word }}\n")
    assert main(["eval", "say", "cases.csv", "--baseline", "last"]) == 2  # nothing to compare with yet
    err = capsys.readouterr().err
    assert "llmtool: no earlier completed evaluation of template 'say' on cases.csv to compare with" in err
    assert "kept as evaluation" not in err  # refused before anything ran

    assert main(["eval", "say", "cases.csv", "--name", "v1"]) == 1  # without a baseline: cases fail
    first = evaluation_id(capsys.readouterr().err)

    version(prompts, "Tell {{ word }}\n")
    assert main(["eval", "say", "cases.csv", "--baseline", "v1"]) == 1  # "breaks" regressed
    captured = capsys.readouterr()
    assert f"· baseline: evaluation {first} (v1) @ " in captured.err
    out = captured.out
    assert "0 regressed" not in out and "1 regressed, 1 fixed, 1 still failing, 1 still passing, 0 new, 0 removed" in out
    assert "regressed      breaks × demo:echo: expected to contain 'Say'" in out
    assert "fixed          mends × demo:echo: was: expected to contain 'Tell'" in out
    assert "-Say {{ word }}\n+Tell {{ word }}" in out
    second = evaluation_id(captured.err)

    # back to a version that breaks nothing the last one passed: 0, though "never" still fails
    version(prompts, "Tell {{ word }} Say\n")
    assert main(["eval", "say", "cases.csv", "--baseline", second]) == 0
    out = capsys.readouterr().out
    assert "0 regressed, 1 fixed, 1 still failing, 2 still passing" in out
    assert "✗ never (line 5) × demo:echo: failed: expected to contain 'dog'" in out


def test_a_pinned_baseline_applies_unless_another_is_given(prompts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    version(prompts, "Say {{ word }}\n")
    assert main(["eval", "say", "cases.csv", "--name", "release"]) == 1
    capsys.readouterr()
    version(prompts, "Say {{ word }}\n", extra="baseline: release\n")  # the same prompt: nothing changes
    assert main(["eval", "say", "cases.csv"]) == 0
    out = capsys.readouterr().out
    assert "0 regressed, 0 fixed, 2 still failing, 2 still passing" in out
    assert "+baseline: release\n" in out  # the diff of the two versions
    assert main(["eval", "say", "cases.csv", "--baseline", "last"]) == 0  # --baseline wins over the pinned one
    captured = capsys.readouterr()
    assert "(release)" not in captured.err
    assert "template: same template version (" in captured.out  # no diff: a note says why
    version(prompts, "Say {{ word }}\n", extra="baseline: nightly\n")
    assert main(["eval", "say", "cases.csv"]) == 2
    assert "llmtool: no evaluation 'nightly'" in capsys.readouterr().err


def test_a_baseline_must_be_comparable(prompts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    version(prompts, "Say {{ word }}\n")
    (prompts.parent / "other.csv").write_text("word\ncat\n", encoding="utf-8")
    assert main(["eval", "say", "other.csv"]) == 0
    other = evaluation_id(capsys.readouterr().err)
    assert main(["eval", "say", "cases.csv", "--baseline", other]) == 2
    err = capsys.readouterr().err
    assert f"llmtool: evaluation {other} ran template 'say' on other.csv; it cannot be the baseline" in err
    for bad in (["--name", "last"], ["--name", "no spaces"], ["--baseline", "a/b"], ["--repeat", "0"]):
        with pytest.raises(SystemExit) as exited:
            main(["eval", "say", "cases.csv", *bad])
        assert exited.value.code == 2


def test_repeats_print_pass_rates_and_spread(prompts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    version(prompts, "Say {{ word }}\n", extra="assertions:\n  - {type: not_contains, values: [dog]}\n")
    (prompts.parent / "two.csv").write_text("id,word\nok,cat\nbad,dog\n", encoding="utf-8")
    assert main(["eval", "say", "two.csv", "--repeat", "3"]) == 1
    out = capsys.readouterr().out
    assert re.search(r"demo:echo\s+3/6 50%\s+3\s+0\s+0\s+", out)  # passed, failed, errors, flaky
    assert ("✗ bad (line 3) × demo:echo: 0/3 passed (0%, " in out
            and "contains none of 'dog': contains 'dog', which it must not (×3)" in out)
    assert "ok (line 2)" not in out


def test_a_flaky_cell_is_marked(prompts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with LoopbackServer() as server:
        (prompts.parent / "llmtool.toml").write_text(
            f'[endpoints.local]\nbase_url = "{server.openai_base_url}"\nmodels = ["flaky"]\n', encoding="utf-8")
        server.enqueue(*(Scenario(text=text, tokens_per_second=10_000) for text in ("Yes", "No", "Yes")))
        version(prompts, "{{ word }}\n")
        (prompts.parent / "one.csv").write_text("id,word,expect_contains\nq,Ready?,Yes\n", encoding="utf-8")
        assert main(["eval", "say", "one.csv", "-m", "local:flaky", "-r", "3", "-c", "1"]) == 1
    out = capsys.readouterr().out
    assert "⚠ q (line 2) × local:flaky: 2/3 passed (67%, " in out and "expected to contain 'Yes' (×1)" in out
    assert re.search(r"local:flaky\s+2/3 67%\s+1\s+0\s+1\s+", out)
