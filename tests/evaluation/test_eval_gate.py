"""Two evaluations through the real runner into a real SQLite store, the second after a template
edit with known effects: the exact fixed / regressed / still failing / still passing sets, the
deltas, the diff, and a baseline found by `last`, by id and by name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from llmtool.evaluation import EvalReport, load_dataset, run_evaluation
from llmtool.evaluation.baseline import BaselineError, compare_evaluations
from llmtool.service import LLMService
from llmtool.settings import Settings
from llmtool.store import open_store
from llmtool.templates import load_template
from tests.helpers import write_template

V1 = "---\nmodel: demo:echo\nvariables:\n  word: {}\n---\nSay {{ word }}\n"
V2 = "---\nmodel: demo:echo\nvariables:\n  word: {}\n---\nTell {{ word }} now\n"
# demo:echo answers the prompt itself and demo:assistant's answer quotes it, so each case's fate under
# V1 and V2 is known:
CASES = (
    "id,word,expect_contains,assert_tokens\n"
    "keeps,cat,cat,\n"          # both say cat: still passing
    "breaks,cat,Say,\n"         # only V1 says "Say": regressed
    "mends,cat,Tell,\n"         # only V2 says "Tell": fixed
    "never,cat,dog,\n"          # neither says dog: still failing
    "longer,cat,,2\n"           # V1 2 tokens, V2 3: regressed by its assertion
)


@pytest.fixture
async def service(fast_settings: Settings, tmp_path: Path) -> AsyncIterator[LLMService]:
    service = LLMService(fast_settings)
    await service.attach_store(await open_store(f"sqlite+aiosqlite:///{tmp_path / 'runs.db'}"))
    yield service
    await service.aclose()


async def evaluate_version(service: LLMService, prompts: Path, text: str, name: str | None = None) -> EvalReport:
    template = load_template(write_template(prompts, "say", text))
    dataset = load_dataset(prompts.parent / "cases.csv", template)
    return await run_evaluation(service, template, dataset, ["demo:echo", "demo:assistant"], name=name)


async def test_an_edit_shows_exactly_what_it_fixed_and_broke(tmp_path: Path, service: LLMService) -> None:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (tmp_path / "cases.csv").write_text(CASES, encoding="utf-8")
    before = await evaluate_version(service, prompts, V1, name="v1")
    after = await evaluate_version(service, prompts, V2)
    assert service.store is not None and before.evaluation_id and after.evaluation_id

    comparison = await compare_evaluations(service.store, after.evaluation_id, "last")
    assert comparison.baseline_id == before.evaluation_id
    changes = {(c.case_id, c.model): c.change for c in comparison.cells}
    assert changes == {
        ("keeps", "demo:echo"): "still_passing", ("keeps", "demo:assistant"): "still_passing",
        ("breaks", "demo:echo"): "regressed", ("breaks", "demo:assistant"): "regressed",
        ("mends", "demo:echo"): "fixed", ("mends", "demo:assistant"): "fixed",
        ("never", "demo:echo"): "still_failing", ("never", "demo:assistant"): "still_failing",
        ("longer", "demo:echo"): "regressed", ("longer", "demo:assistant"): "still_failing",  # always long
    }
    assert {(c.case_id, c.model) for c in comparison.regressed} == {
        ("breaks", "demo:echo"), ("breaks", "demo:assistant"), ("longer", "demo:echo")}
    assert {(c.case_id, c.model) for c in comparison.fixed} == {("mends", "demo:echo"), ("mends", "demo:assistant")}
    longer = next(c for c in comparison.regressed if c.case_id == "longer")
    assert longer.output_tokens_delta == 1 and longer.cost_delta == 0 and longer.latency_delta is not None
    assert longer.current is not None and longer.current.reason == "output tokens ≤ 2: 3 output tokens > 2"
    assert comparison.summary()["regressed"] == len(comparison.regressed)
    assert "-Say {{ word }}\n+Tell {{ word }} now\n" in comparison.template_diff
    lines = comparison.report_lines()
    assert lines[0] == (f"compared with evaluation {before.evaluation_id} "
                        f"(template {before.template_hash} → {after.template_hash})")
    assert any(line.startswith("regressed      breaks × demo:echo: expected to contain 'Say'") for line in lines)
    assert any(line.startswith("fixed          mends × demo:echo: was: expected to contain 'Tell'") for line in lines)

    # the same baseline by id and by name; an unknown one says so
    for ref in (before.evaluation_id, "v1"):
        again = await compare_evaluations(service.store, after.evaluation_id, ref)
        assert [(c.case_id, c.model, c.change) for c in again.cells] == [
            (c.case_id, c.model, c.change) for c in comparison.cells]
    with pytest.raises(BaselineError, match="no evaluation 'v0'"):
        await compare_evaluations(service.store, after.evaluation_id, "v0")


async def test_a_name_finds_the_newest_evaluation_so_called_but_never_itself(
    tmp_path: Path, service: LLMService,
) -> None:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (tmp_path / "cases.csv").write_text(CASES, encoding="utf-8")
    first = await evaluate_version(service, prompts, V1, name="nightly")
    second = await evaluate_version(service, prompts, V2, name="nightly")
    assert service.store is not None and second.evaluation_id
    comparison = await compare_evaluations(service.store, second.evaluation_id, "nightly")
    assert comparison.baseline_id == first.evaluation_id
