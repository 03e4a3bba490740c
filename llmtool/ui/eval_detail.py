"""One cell of an evaluation, opened: its run's full request, answer (with the model's reasoning),
validation, assertion results and measures, and a link to the run in History. Pure, no Gradio.

    shown = cell_detail(case_id, model, results, run=record, redact=context.redact)
    shown.title, shown.request, shown.answer, shown.checks    # Markdown, for four components

`results` are the cell's runs (one per repeat) as the evaluation reported them; the one shown is the
first that did not pass (else the first), `run` its stored record (None when the store does not
have it: the answer is then the evaluation's copy and the request is said to be missing). Text from
a run is redacted and escaped, or put in a code block; the answer is Markdown for a sanitizing
component, as History shows it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from llmtool.evaluation.assertions import AssertionResult
from llmtool.evaluation.results import CaseResult
from llmtool.store import RunRecord
from llmtool.ui.eval_links import run_link
from llmtool.ui.history_render import (
    answer_for,
    metrics_markdown,
    request_markdown,
    status_markdown,
    validation_markdown,
)
from llmtool.ui.status import escape_markdown
from llmtool.ui.template_fields import code_block

Redact = Callable[[str], str]
PICK_A_CELL = "Select a cell of the table to see its run: the request, the answer, and every check."
_MARK = {"passed": "✓", "failed": "✗", "error": "!", "stopped": "■"}


@dataclass(frozen=True)
class CellDetail:
    title: str
    request: str = ""
    answer: str = ""
    checks: str = ""


def shown_result(results: Sequence[CaseResult]) -> CaseResult | None:
    """The run a cell opens on: its first that did not pass, else its first."""
    return next((r for r in results if not r.passed), results[0] if results else None)


def cell_detail(case_id: str, model: str, results: Sequence[CaseResult], run: RunRecord | None = None, *,
                redact: Redact = lambda text: text, price_hint: str | None = None) -> CellDetail:
    result = shown_result(results)
    head = f"**{escape_markdown(redact(case_id))} × {escape_markdown(redact(model))}**"
    if result is None:
        return CellDetail(title=f"{head} · not run (yet)")
    title = " · ".join([head, *_which(result, results), _verdict(result, redact)])
    if result.run_id:
        title += f" · [Open in History]({run_link(result.run_id)}) · run `{result.run_id}`"
    if len(results) > 1:
        title += "\n\n" + _runs_line(results)
    checks = [_assertions_markdown(result.assertions, redact)]
    if run is None:
        missing = ("_The run is not in the run store (it never started, or is no longer kept): the answer below "
                   "is the evaluation's copy._")
        answer = code_block(redact(result.output)) if result.output else "_(no answer)_"
        checks.append(_measures(result))
        return CellDetail(title=title, request=missing, answer=answer, checks="\n\n".join(c for c in checks if c))
    checks = [validation_markdown(run, redact), *checks,
              status_markdown(run, redact), metrics_markdown(run.metrics, price_hint)]
    return CellDetail(title=title, request=request_markdown(run, redact), answer=answer_for(run, redact),
                      checks="\n\n".join(c for c in checks if c))


def _which(result: CaseResult, results: Sequence[CaseResult]) -> list[str]:
    return [f"run {result.repeat} of {len(results)}"] if len(results) > 1 else []


def _verdict(result: CaseResult, redact: Redact) -> str:
    if result.passed:
        return "✓ passed"
    word = {"failed": "✗ failed", "error": "! error", "stopped": "■ stopped"}[result.status]
    reason = result.reason()
    return f"{word}: {escape_markdown(redact(reason))}" if reason else word


def _runs_line(results: Sequence[CaseResult]) -> str:
    """Every repeat of the cell, each a link to its run: 'Runs: [1 ✓](?run=…) · [2 ✗](?run=…)'."""
    passed = sum(r.passed for r in results)
    parts = []
    for result in results:
        label = f"{result.repeat} {_MARK[result.status]}"
        parts.append(f"[{label}]({run_link(result.run_id)})" if result.run_id else label)
    return f"Runs ({passed}/{len(results)} passed): " + " · ".join(parts)


def _assertions_markdown(assertions: Sequence[AssertionResult], redact: Redact) -> str:
    """'**Assertions** · 2 of 3 passed' and a row per assertion: verdict, what, score, why."""
    if not assertions:
        return ""
    passed = sum(a.passed for a in assertions)
    rows = [f"**Assertions** · {passed} of {len(assertions)} passed", "",
            "| | assertion | score | reason |", "|---|---|---|---|"]
    for a in assertions:
        reason = a.reason
        if a.type == "judge":
            extra = [f"grader {a.model}" if a.model else "", f"${a.cost_usd:.6f}" if a.cost_usd is not None else ""]
            reason += "".join(f" · {e}" for e in extra if e)
        label = _cell(a.label or a.type, redact)
        if a.run_id:
            label += f" ([grading run]({run_link(a.run_id)}))"
        rows.append(f"| {'✓' if a.passed else '✗'} | {label} | {a.score:.2f} | {_cell(reason, redact)} |")
    return "\n".join(rows)


def _measures(result: CaseResult) -> str:
    parts = []
    if result.latency is not None:
        parts.append(f"{result.latency:.2f} s total")
    if result.time_to_first_token is not None:
        parts.append(f"first token {result.time_to_first_token:.2f} s")
    if result.input_tokens is not None or result.output_tokens is not None:
        parts.append(f"{result.input_tokens or 0}→{result.output_tokens or 0} tokens")
    parts.append(f"${result.cost_usd:.6f}" if result.cost_usd is not None else "cost unknown")
    return " · ".join(parts)


def _cell(text: str, redact: Redact) -> str:
    """Text for a Markdown table cell: escaped, on one line, `|` kept as text."""
    return escape_markdown(redact(" ".join(text.split()))).replace("|", "\\|")
