"""What the run store keeps and how it is asked: typed records, filters, pages.

A `RunRecord` is one run as history shows it: who ran what (the full request, the template and its
variables), how it ended (status, text, validation, error, metrics) and where it sits (conversation
and position; a regenerated answer is a sibling at the same position). Its event log is kept beside
it, in order, for replay (`RunStore.events`).
"""

from __future__ import annotations

import re
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from llmtool.events import Metrics

RunStatus = Literal["running", "completed", "stopped", "failed", "interrupted"]
ENDED_STATUSES: frozenset[str] = frozenset({"completed", "stopped", "failed", "interrupted"})
RunSource = Literal["chat", "template", "compare", "evaluation", "cli", "api", "lite", "history", "grading"]


class RunOrigin(BaseModel):
    """Where a run comes from: the login, the surface, and its place in a conversation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user: str | None = Field(None, description="The login name; None without logins.")
    source: RunSource = "api"
    conversation_id: str | None = None
    position: int | None = Field(None, ge=0, description="The turn's index in its conversation.")
    evaluation_id: str | None = None


class ValidationOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    passed: bool
    problems: list[str] = Field(default_factory=list)
    rules_checked: int = 0


class RunRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    user: str | None = None
    source: RunSource = "api"
    conversation_id: str | None = None
    position: int | None = None
    evaluation_id: str | None = None
    model: str
    request: dict[str, Any] = Field(description="The RunRequest as JSON: messages, system, parameters, rules.")
    prompt: str = Field("", description="The last user message (what history lists and searches).")
    system: str | None = None
    template: str | None = None
    template_hash: str | None = None
    variables: dict[str, Any] | None = None
    status: RunStatus = "running"
    text: str = Field("", description="The answer, or the partial text of a run that did not complete.")
    reasoning: str = Field("", description="What a reasoning model showed of its thoughts, apart from the answer.")
    validation: ValidationOutcome | None = None
    error_kind: str | None = None
    error_message: str | None = None
    metrics: Metrics | None = None
    created_at: float = Field(default_factory=time.time, description="Unix time.")
    ended_at: float | None = None
    owner: str | None = Field(None, description="The process that runs (or ran) it: host:pid:tag.")
    event_count: int = 0

    @property
    def ended(self) -> bool:
        return self.status in ENDED_STATUSES


class RunQuery(BaseModel):
    """History's filters. Text search: case-insensitive whole words, all of them required."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user: str | None = None
    status: RunStatus | None = None
    model: str | None = None
    template: str | None = None
    conversation_id: str | None = None
    evaluation_id: str | None = None
    since: float | None = Field(None, description="Created at or after (Unix time).")
    until: float | None = Field(None, description="Created before (Unix time).")
    text: str | None = Field(None, description="Words to find in the prompt or the answer.")
    limit: int = Field(50, ge=1, le=1000)
    before: int | None = Field(None, description="Cursor: the `next_cursor` of the previous page.")


class RunPage(BaseModel):
    runs: list[RunRecord]
    next_cursor: int | None = Field(None, description="Pass as `before` for the next (older) page.")


class TemplateVersion(BaseModel):
    model_config = ConfigDict(frozen=True)

    hash: str
    name: str
    content: str
    created_at: float = Field(default_factory=time.time)


class CellAssertion(BaseModel):
    """One assertion's result on one run, as kept with its cell (the fields of
    `llmtool.evaluation.assertions.AssertionResult`)."""

    model_config = ConfigDict(frozen=True)

    type: str
    label: str
    passed: bool
    score: float
    reason: str
    run_id: str | None = Field(None, description="judge: the grader's run.")
    model: str | None = Field(None, description="judge: the grader.")
    cost_usd: float | None = Field(None, description="judge: what grading cost; None: unknown or no run.")


class CellVerdict(BaseModel):
    """One (case, model) of an evaluation: its verdict and what its run measured (None: no run, or not
    measured). What a comparison with a baseline looks at, stored or just run."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    model: str
    passed: bool
    reason: str = ""
    run_id: str | None = None
    latency: float | None = None
    time_to_first_token: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None


class CellRun(BaseModel):
    """One run of a cell (one of its repeats): its verdict, assertions and measures."""

    model_config = ConfigDict(frozen=True)

    repeat: int = Field(1, ge=1, description="Which of the cell's runs, 1…repeats.")
    run_id: str | None = None
    status: Literal["passed", "failed", "error", "stopped"]
    reason: str = ""
    assertions: list[CellAssertion] = Field(default_factory=list)
    latency: float | None = None
    time_to_first_token: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = Field(None, description="The run's cost plus its grading's; None: unknown.")
    grading_cost_usd: float | None = Field(0.0, description="What its judges' runs cost; None: unknown.")

    @property
    def passed(self) -> bool:
        return self.status == "passed"


class EvaluationCell(BaseModel):
    """One (case, model) of an evaluation: passed when every one of its runs passed; `run_id` and
    `reason` are its first run's and its first failure's; `runs` each run in detail (empty for an
    evaluation stored before they were kept)."""

    model_config = ConfigDict(frozen=True)

    case_id: str
    model: str
    run_id: str | None = None
    passed: bool
    reason: str = ""
    runs: list[CellRun] = Field(default_factory=list)

    @field_validator("runs", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class EvaluationRecord(BaseModel):
    """One evaluation as a unit: a template version × a dataset version × models, and each cell."""

    model_config = ConfigDict(frozen=True)

    id: str
    user: str | None = None
    template: str
    template_hash: str
    dataset: str
    dataset_hash: str
    models: list[str]
    status: Literal["running", "completed", "stopped", "failed"] = "running"
    created_at: float = Field(default_factory=time.time)
    ended_at: float | None = None
    name: str | None = Field(None, description="What its author called it (`llmtool eval --name`): a baseline by name.")
    repeats: int = Field(1, ge=1, description="Runs per case and model.")
    cells: list[EvaluationCell] = Field(default_factory=list)


_WORD = re.compile(r"[^\W_]+")


def search_words(text: str | None) -> list[str]:
    """The words of a search, lower-cased, without operators: letters and digits, nothing else.

    The same split the databases index by (SQLite FTS5 `unicode61`, PostgreSQL `simple` over text
    with everything but letters and digits turned to spaces), so both find the same runs.
    """
    return list(dict.fromkeys(word.lower() for word in _WORD.findall(text or "")))


class SessionRecord(BaseModel):
    """A login session as the store keeps it: whose, since when, last used, and its absolute end.
    The row is found by a hash of the browser's token; the token itself is never stored."""

    model_config = ConfigDict(frozen=True)

    token_hash: str
    user: str
    created_at: float
    last_seen: float
    expires_at: float
    # A digest of the password hash the session was opened under: a new password (or a removed user)
    # ends it (`llmtool.accounts`). "" where logins have no users file (a bare password check).
    stamp: str = ""
