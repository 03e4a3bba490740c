"""Compare an evaluation with a baseline evaluation of the same template (any version) and dataset.

    comparison = await compare_evaluations(service.store, evaluation_id, "last", user=login)  # an id, a name
    comparison.summary()              # {"regressed": 1, "fixed": 2, "still_failing": 0, …}, every kind
    comparison.rows(changed_only=True)  # the cells whose verdict changed (and new/removed ones)
    comparison.regressed              # the CI gate: `llmtool eval … --baseline last` exits 1 when any
    comparison.template_diff          # unified diff of the two template versions' stored content
    print("\n".join(comparison.report_lines()))

    comparison = compare(current_cells, baseline_cells)    # pure, from cells gathered yourself
                                                            # (e.g. `Cell.from_result(case_result)`)

Per (case, model): `fixed` (failed before, passes now), `regressed` (passed before, fails now),
`still_failing`, `still_passing`, `new` (no such cell in the baseline) and `removed` (only in the
baseline). Each pair carries the change in latency, time to first token, tokens and cost (current
minus baseline; None when either side did not measure it — an unknown cost stays unknown).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from llmtool.errors import InvalidRequestError
from llmtool.store.records import CellVerdict

if TYPE_CHECKING:
    from llmtool.evaluation.results import CaseResult
    from llmtool.store import EvaluationRecord, RunStore
    from llmtool.store.evaluation_queries import StoredCell

Change = Literal["regressed", "fixed", "still_failing", "still_passing", "new", "removed"]
CHANGES: tuple[Change, ...] = ("regressed", "fixed", "still_failing", "still_passing", "new", "removed")
CHANGED: frozenset[Change] = frozenset({"regressed", "fixed", "new", "removed"})
_DIGITS = re.compile(r"(\d+)")


class BaselineError(InvalidRequestError):
    """No baseline to compare with, or one that is not comparable: the message says which."""


class Cell(CellVerdict):
    """One evaluation's verdict on one (case, model), with what its run measured."""

    @classmethod
    def from_result(cls, result: CaseResult) -> Cell:
        return cls(case_id=result.case_id, model=result.model, passed=result.passed, reason=result.reason(),
                   run_id=result.run_id, latency=result.latency, time_to_first_token=result.time_to_first_token,
                   input_tokens=result.input_tokens, output_tokens=result.output_tokens, cost_usd=result.cost_usd)

    @classmethod
    def from_stored(cls, cell: StoredCell) -> Cell:
        return cls(**cell.model_dump(include=set(CellVerdict.model_fields)))  # not its runs


class CellComparison(BaseModel):
    model_config = ConfigDict(frozen=True)

    case_id: str
    model: str
    change: Change
    current: Cell | None
    baseline: Cell | None
    latency_delta: float | None = None
    time_to_first_token_delta: float | None = None
    input_tokens_delta: int | None = None
    output_tokens_delta: int | None = None
    cost_delta: float | None = None

    @property
    def changed(self) -> bool:
        return self.change in CHANGED

    def line(self) -> str:
        """'regressed  refund × demo:assistant: expected to contain 'refund' (Δ +0.41 s, +12 tok, +$0.0003)'."""
        side = self.current or self.baseline
        reason = side.reason if side is not None and not side.passed else ""
        if self.change == "fixed" and self.baseline is not None:
            reason = f"was: {self.baseline.reason}" if self.baseline.reason else ""
        deltas = ", ".join(part for part in (
            _signed(self.latency_delta, " s", 2), _signed(self.output_tokens_delta, " tok", 0),
            _signed(self.cost_delta, "", 6, prefix="$"),
        ) if part)
        text = f"{self.change.replace('_', ' '):<14} {self.case_id} × {self.model}"
        text += f": {reason}" if reason else ""
        return text + (f" (Δ {deltas})" if deltas else "")


class Comparison(BaseModel):
    template: str = ""
    dataset: str = ""
    evaluation_id: str | None = None
    baseline_id: str | None = None
    template_hash: str = ""
    baseline_template_hash: str = ""
    template_diff: str = ""
    diff_note: str = ""  # why there is no diff: same version, or a version's content is not stored
    cells: list[CellComparison]

    def summary(self) -> dict[Change, int]:
        """How many cells of each kind, every kind present (0 when none)."""
        counts = dict.fromkeys(CHANGES, 0)
        for cell in self.cells:
            counts[cell.change] += 1
        return counts

    def rows(self, changed_only: bool = False) -> list[CellComparison]:
        return [c for c in self.cells if c.changed] if changed_only else list(self.cells)

    @property
    def regressed(self) -> list[CellComparison]:
        return [c for c in self.cells if c.change == "regressed"]

    @property
    def fixed(self) -> list[CellComparison]:
        return [c for c in self.cells if c.change == "fixed"]

    def pass_rates(self) -> dict[str, tuple[float | None, float | None]]:
        """Per model: (baseline pass rate, current pass rate), None where it has no cell."""
        rates: dict[str, tuple[float | None, float | None]] = {}
        for model in dict.fromkeys(c.model for c in self.cells):
            mine = [c for c in self.cells if c.model == model]
            rates[model] = (_rate([c.baseline for c in mine]), _rate([c.current for c in mine]))
        return rates

    def summary_line(self) -> str:
        counts = self.summary()
        return ", ".join(f"{count} {kind.replace('_', ' ')}" for kind, count in counts.items())

    def report_lines(self, changed_only: bool = True) -> list[str]:
        """The comparison as text (the CLI's): a heading, the counts, then a line per cell."""
        heading = f"compared with evaluation {self.baseline_id or '(baseline)'}"
        if self.baseline_template_hash and self.baseline_template_hash != self.template_hash:
            heading += f" (template {self.baseline_template_hash} → {self.template_hash})"
        return [heading, self.summary_line(), *(c.line() for c in self.rows(changed_only))]


def compare(current: Iterable[Cell], baseline: Iterable[Cell], **about: Any) -> Comparison:
    """The comparison of two evaluations' cells (`about`: Comparison's other fields). Rows: the
    current cells by case (natural order: #2 before #10), then model; removed ones after them."""
    now = {(c.case_id, c.model): c for c in current}
    before = {(c.case_id, c.model): c for c in baseline}
    models = list(dict.fromkeys([m for _, m in now] + [m for _, m in before]))
    order = sorted(now, key=lambda key: (_natural(key[0]), models.index(key[1])))
    gone = sorted((k for k in before if k not in now), key=lambda key: (_natural(key[0]), models.index(key[1])))
    cells = [_pair(key, now.get(key), before.get(key)) for key in [*order, *gone]]
    return Comparison(cells=cells, **about)


def template_diff(baseline: str, current: str, baseline_name: str = "baseline", current_name: str = "current",
                  context: int = 3) -> str:
    """The unified diff of two template versions ('' when equal)."""
    lines = difflib.unified_diff(baseline.splitlines(keepends=True), current.splitlines(keepends=True),
                                 fromfile=baseline_name, tofile=current_name, n=context)
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


async def resolve_baseline(store: RunStore, evaluation: EvaluationRecord, baseline: str, *,
                           user: str | None = None) -> EvaluationRecord:
    """The baseline of `evaluation`: `last` (its template's newest earlier completed evaluation on
    the same dataset), an evaluation id, or a name (`llmtool eval --name`: the newest completed
    evaluation of the template so called); a BaselineError when there is none or it is not comparable."""
    from llmtool.store.evaluation_queries import EvaluationQueries

    if baseline == "last":
        found = await EvaluationQueries.of(store).last_evaluation(
            evaluation.template, evaluation.dataset, user=user, before=evaluation.created_at, exclude=evaluation.id)
        if found is None:
            raise BaselineError(f"no earlier completed evaluation of template {evaluation.template!r} on "
                                f"{evaluation.dataset} to compare with")
        return found
    record = await store.get_evaluation(baseline)
    if record is None or (user is not None and record.user != user):
        record = await EvaluationQueries.of(store).named(baseline, template=evaluation.template, user=user,
                                                         exclude=evaluation.id)
    if record is None:
        raise BaselineError(f"no evaluation {baseline!r} (an id, or the name of a completed evaluation of "
                            f"template {evaluation.template!r}) to compare with")
    if baseline == evaluation.id:
        raise BaselineError("an evaluation cannot be its own baseline")
    if (record.template, record.dataset) != (evaluation.template, evaluation.dataset):
        raise BaselineError(
            f"evaluation {baseline} ran template {record.template!r} on {record.dataset}; it cannot be the "
            f"baseline of template {evaluation.template!r} on {evaluation.dataset}")
    return record


async def compare_evaluations(store: RunStore, evaluation_id: str, baseline: str = "last", *,
                              user: str | None = None) -> Comparison:
    """Compare stored evaluation `evaluation_id` with `baseline` ("last", an id or a name), with the diff of
    the two template versions when the store has both. `user`: the login whose evaluations may be
    read (None: anyone's). A BaselineError says what is missing or not comparable."""
    from llmtool.store.evaluation_queries import EvaluationQueries

    current = await store.get_evaluation(evaluation_id)
    if current is None or (user is not None and current.user != user):
        raise BaselineError(f"no evaluation {evaluation_id!r}")
    base = await resolve_baseline(store, current, baseline, user=user)
    queries = EvaluationQueries.of(store)
    now = [Cell.from_stored(c) for c in await queries.cells(current.id)]
    before = [Cell.from_stored(c) for c in await queries.cells(base.id)]
    diff, note = await _versions_diff(store, base, current)
    return compare(now, before, template=current.template, dataset=current.dataset, evaluation_id=current.id,
                   baseline_id=base.id, template_hash=current.template_hash,
                   baseline_template_hash=base.template_hash, template_diff=diff, diff_note=note)


async def _versions_diff(store: RunStore, base: EvaluationRecord, current: EvaluationRecord) -> tuple[str, str]:
    if base.template_hash == current.template_hash:
        return "", f"same template version ({current.template_hash})"
    old, new = await store.template(base.template_hash), await store.template(current.template_hash)
    missing = [h for h, v in ((base.template_hash, old), (current.template_hash, new)) if v is None]
    if old is None or new is None:
        return "", f"the content of template version {', '.join(missing)} is not stored"
    name = current.template
    return template_diff(old.content, new.content, f"{name} @ {base.template_hash}",
                         f"{name} @ {current.template_hash}"), ""


def _pair(key: tuple[str, str], now: Cell | None, before: Cell | None) -> CellComparison:
    case_id, model = key
    if before is None:
        change: Change = "new"
    elif now is None:
        change = "removed"
    elif now.passed:
        change = "still_passing" if before.passed else "fixed"
    else:
        change = "regressed" if before.passed else "still_failing"
    deltas = {} if now is None or before is None else {
        "latency_delta": _delta(now.latency, before.latency),
        "time_to_first_token_delta": _delta(now.time_to_first_token, before.time_to_first_token),
        "input_tokens_delta": _count_delta(now.input_tokens, before.input_tokens),
        "output_tokens_delta": _count_delta(now.output_tokens, before.output_tokens),
        "cost_delta": _delta(now.cost_usd, before.cost_usd),
    }
    return CellComparison(case_id=case_id, model=model, change=change, current=now, baseline=before, **deltas)


def _delta(now: float | None, before: float | None) -> float | None:
    """now − before, rounded past float noise; None when either is unknown."""
    return None if now is None or before is None else round(now - before, 9)


def _count_delta(now: int | None, before: int | None) -> int | None:
    return None if now is None or before is None else now - before


def _rate(cells: Sequence[Cell | None]) -> float | None:
    present = [c for c in cells if c is not None]
    return sum(c.passed for c in present) / len(present) if present else None


def _natural(text: str) -> tuple[tuple[int, int | str], ...]:
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in _DIGITS.split(text) if part)


def _signed(value: float | int | None, unit: str, digits: int, prefix: str = "") -> str:
    if value is None or value == 0:
        return ""
    sign = "+" if value > 0 else "−"
    return f"{sign}{prefix}{abs(value):.{digits}f}{unit}"
