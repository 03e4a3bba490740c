"""A run's status object, the same whether the run is live in this process or read from the store.

    status = live_status(run, origin)            # a running (or just ended) run in memory
    status = stored_status(record)               # any run the store keeps
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, Field

from llmtool.events import Failed, Interrupted, Metrics, ReasoningDelta, RunEvent, TextDelta, Validated
from llmtool.service import Run, RunOrigin
from llmtool.store import RunRecord

ApiStatus = Literal["queued", "running", "completed", "stopped", "failed", "interrupted"]


class RunError(BaseModel):
    kind: str = Field(description="A stable error kind: unknown_model, rate_limited, first_token_timeout, …")
    message: str = Field(description="What went wrong, for a person.")


class RunValidation(BaseModel):
    passed: bool
    problems: list[str] = Field(default_factory=list)
    rules_checked: int = 0


class RunLinks(BaseModel):
    self: str
    events: str
    cancel: str


class RunStatusBody(BaseModel):
    id: str
    status: ApiStatus
    model: str
    created_at: float = Field(description="Unix time.")
    elapsed_s: float = Field(description="Seconds since the run started (its whole duration once it ended).")
    text: str = Field(description="The answer so far (the whole answer once completed).")
    reasoning: str = Field("", description="What a reasoning model showed of its thoughts so far, apart from "
                                           "the answer (empty: it showed none, or did not think).")
    thinking_s: float | None = Field(
        None, description="Seconds the model reasoned before its first text: so far while it still thinks "
                          "(no text yet), else until its first text. Null: it did not reason, or it is not known "
                          "(a buffered run that has not ended).")
    metrics: Metrics | None = Field(None, description="Timing, tokens and cost, once the run ended.")
    validation: RunValidation | None = None
    error: RunError | None = None
    conversation_id: str | None = None
    position: int | None = Field(None, description="The turn's index in its conversation.")
    events: int = Field(description="How many events the run's log holds so far.")
    links: RunLinks
    cancel_requested: bool | None = Field(None, description="Only in answers to cancel.")
    detail: str | None = Field(None, description="A sentence about this answer (cancel of an ended run…).")


def links(run_id: str) -> RunLinks:
    base = f"/api/runs/{run_id}"
    return RunLinks(self=base, events=f"{base}/events", cancel=f"{base}/cancel")


def live_status(run: Run, origin: RunOrigin | None) -> RunStatusBody:
    log = list(run.log)  # a snapshot: the run's task may append while we read
    terminal = run.terminal
    validation = next((e for e in reversed(log) if isinstance(e, Validated)), None)
    error: RunError | None = None
    if isinstance(terminal, Failed):
        error = RunError(kind=terminal.error_kind, message=terminal.message)
    elif isinstance(terminal, Interrupted):
        error = RunError(kind="interrupted", message=terminal.message)
    elapsed = terminal.metrics.total_time if terminal is not None else time.time() - run.created_at
    return RunStatusBody(
        id=run.id,
        status=run.status,
        model=run.model.id,
        created_at=run.created_at,
        elapsed_s=round(max(elapsed, 0.0), 3),
        text=terminal.text if terminal is not None and terminal.kind == "completed" else run.text_so_far(),
        reasoning=getattr(terminal, "reasoning", "") or run.reasoning_so_far(),
        thinking_s=_thinking(log, terminal.metrics if terminal is not None else None, elapsed,
                             buffered=run.request.validation.mode == "buffer"),
        metrics=terminal.metrics if terminal is not None else None,
        validation=RunValidation(passed=validation.passed, problems=validation.problems,
                                 rules_checked=validation.rules_checked) if validation else None,
        error=error,
        conversation_id=origin.conversation_id if origin else None,
        position=origin.position if origin else None,
        events=len(log),
        links=links(run.id),
    )


def _thinking(log: list[RunEvent], metrics: Metrics | None, elapsed: float, buffered: bool) -> float | None:
    """Seconds from the first reasoning event to the first text (or to now, while no text came).
    In buffer mode the text comes at the end, all at once: not known until the run ends."""
    if _thought(metrics) is not None or buffered:
        return _thought(metrics)
    began = next((e.elapsed for e in log if isinstance(e, ReasoningDelta)), None)
    if began is None:
        return None
    until = next((e.elapsed for e in log if isinstance(e, TextDelta)), None)
    if until is None and metrics is not None:  # ended before any text: it thought until the end
        until = metrics.total_time or elapsed
    return round(max((elapsed if until is None else until) - began, 0.0), 3)


def _thought(metrics: Metrics | None) -> float | None:
    return round(metrics.thinking_time, 3) if metrics is not None and metrics.thinking_time is not None else None


def stored_status(record: RunRecord) -> RunStatusBody:
    end = record.ended_at if record.ended_at is not None else (None if record.ended else time.time())
    elapsed = (end - record.created_at) if end is not None else (record.metrics.total_time if record.metrics else 0.0)
    error = RunError(kind=record.error_kind or record.status, message=record.error_message or "") \
        if record.error_kind or record.error_message else None
    return RunStatusBody(
        id=record.id,
        status=record.status,
        model=record.model,
        created_at=record.created_at,
        elapsed_s=round(max(elapsed, 0.0), 3),
        text=record.text,
        reasoning=record.reasoning,
        thinking_s=_thought(record.metrics),
        metrics=record.metrics,
        validation=RunValidation(**record.validation.model_dump()) if record.validation else None,
        error=error,
        conversation_id=record.conversation_id,
        position=record.position,
        events=record.event_count,
        links=links(record.id),
    )


def dump(status: RunStatusBody, **extra: Any) -> dict[str, Any]:
    """JSON-ready, leaving out the fields only some answers carry."""
    return status.model_copy(update=extra).model_dump(mode="json", exclude_none=False,
                                                     exclude={k for k in ("cancel_requested", "detail")
                                                              if k not in extra})
