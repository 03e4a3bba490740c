"""What the History tab shows, as pure functions over stored runs (no Gradio, no store).

    rows = [table_row(record, redact) for record in page.runs]    # the list, one row per run
    since, until = date_range("2025-01-01", "2025-01-31")           # local days; ValueError says why
    events_rows(events)                                            # text deltas collapsed

Every text that comes from a run (prompts, answers, errors, names) goes through `redact`; text
shown inside Markdown is escaped or put in a code block, so a prompt's HTML or Markdown is shown,
never run. Times are the server's local time.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from llmtool.events import (
    Completed,
    Failed,
    Interrupted,
    Metrics,
    Notice,
    ReasoningDelta,
    Retrying,
    RunEvent,
    Started,
    Stopped,
    TextDelta,
    Usage,
    Validated,
    stretches,
)
from llmtool.store import RunRecord
from llmtool.ui.restore import turn_from_record
from llmtool.ui.status import escape_markdown, metrics_line, with_price_hint
from llmtool.ui.template_fields import code_block, template_label
from llmtool.ui.transcript import answer_markdown, thought_details

Redact = Callable[[str], str]

STATUS_SYMBOLS = {
    "running": "● running",
    "completed": "✓ completed",
    "stopped": "■ stopped",
    "failed": "✗ failed",
    "interrupted": "⚠ interrupted",
}
HEADERS = ["created", "status", "model", "template", "user", "prompt", "answer", "TTFT s", "total s",
           "tokens in→out", "cost", "id"]
ID_COLUMN = len(HEADERS) - 1
EVENT_HEADERS = ["#", "kind", "elapsed s", "summary"]
EXCERPT = 80
SUMMARY = 60
_SPACES = re.compile(r"\s+")


# -- the list -------------------------------------------------------------------------------------
def local_time(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def excerpt(text: str | None, limit: int = EXCERPT) -> str:
    """One line of at most `limit` characters: whitespace collapsed, '…' when cut."""
    line = _SPACES.sub(" ", text or "").strip()
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def table_row(record: RunRecord, redact: Redact) -> list[str]:
    metrics = record.metrics
    template = template_label(record.template, _short(record.template_hash)) if record.template else ""
    return [
        local_time(record.created_at),
        STATUS_SYMBOLS.get(record.status, record.status),
        redact(record.model),
        redact(template),
        redact(record.user or ""),
        redact(excerpt(record.prompt)),
        redact(excerpt(record.text or record.error_message)),
        _number(metrics.time_to_first_token if metrics else None, 2),
        _number(metrics.total_time if metrics else None, 1),
        tokens(metrics),
        cost(metrics),
        record.id,
    ]


def tokens(metrics: Metrics | None) -> str:
    if metrics is None or (metrics.input_tokens is None and metrics.output_tokens is None):
        return ""
    approx = "~" if metrics.usage_estimated else ""
    return f"{approx}{metrics.input_tokens or 0:,}→{metrics.output_tokens or 0:,}"


def cost(metrics: Metrics | None) -> str:
    if metrics is None:
        return ""
    return "unknown" if metrics.cost_usd is None else f"${metrics.cost_usd:.4f}"


def page_line(offset: int, shown: int, total: int) -> str:
    """'runs 51–100 of 1,234' (0-based `offset` of the page's first run)."""
    if total == 0 or shown == 0:
        return "no runs match" if total == 0 else f"no more runs ({total:,} in all)"
    return f"runs {offset + 1:,}–{offset + shown:,} of {total:,}"


# -- filters --------------------------------------------------------------------------------------
def parse_day(text: str | None, label: str) -> date | None:
    """A YYYY-MM-DD date, None when empty; a ValueError with a sentence for people otherwise."""
    value = (text or "").strip()
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise ValueError(f"{label}: {value!r} is not a date; write it as YYYY-MM-DD, e.g. 2025-03-31") from None


def date_range(start: str | None, end: str | None) -> tuple[float | None, float | None]:
    """(since, until) as Unix times for local days `start` to `end`, both included."""
    first = parse_day(start, "Date from")
    last = parse_day(end, "Date to")
    if first and last and first > last:
        raise ValueError(f"Date from ({first.isoformat()}) is after Date to ({last.isoformat()})")
    since = _midnight(first, "Date from") if first else None
    until = _midnight(last + timedelta(days=1), "Date to") if last and last < date.max else None
    return since, until


def _midnight(day: date, label: str) -> float:
    try:
        return datetime(day.year, day.month, day.day).timestamp()  # local time
    except (ValueError, OverflowError):  # year 1 or 9999: out of what the platform's clock can say
        raise ValueError(f"{label}: {day.isoformat()} is too far from today; pick a date between "
                         "1970 and 3000") from None


# -- one run --------------------------------------------------------------------------------------
def title_markdown(record: RunRecord, redact: Redact) -> str:
    parts = [f"**Run {record.id}**", STATUS_SYMBOLS.get(record.status, record.status),
             escape_markdown(redact(record.model)), local_time(record.created_at), f"source {record.source}"]
    if record.user:
        parts.append(f"user {escape_markdown(redact(record.user))}")
    if record.conversation_id:
        position = f" turn {record.position + 1}" if record.position is not None else ""
        parts.append(f"conversation {escape_markdown(record.conversation_id)}{position}")
    return " · ".join(parts)


def status_markdown(record: RunRecord, redact: Redact) -> str:
    """How the run ended, and its error."""
    line = {
        "running": "Still running (as of the last write to the store)",
        "completed": "Completed",
        "stopped": "Stopped" + (" · partial answer kept" if record.text else ""),
        "failed": "Failed" + (" · partial answer kept" if record.text else ""),
        "interrupted": "Interrupted: the process running it stopped" + (
            " · partial answer kept" if record.text else ""),
    }.get(record.status, record.status)
    if record.ended_at is not None:
        line += f" · ended {local_time(record.ended_at)}"
    if record.error_message:
        kind = f" ({record.error_kind})" if record.error_kind else ""
        line += f"\n\n⚠ Error{kind}: {record.error_message}"
    return escape_markdown(redact(line))


def metrics_markdown(metrics: Metrics | None, price_hint: str | None = None) -> str:
    """The run's metrics; with `price_hint`, how to price its model when its cost is unknown."""
    if metrics is None:
        return "No metrics (the run did not end normally)"
    line = metrics_line(metrics)
    if metrics.usage_estimated:
        line += " · token counts estimated"
    return escape_markdown(with_price_hint(line, metrics, price_hint))


def validation_markdown(record: RunRecord, redact: Redact) -> str:
    outcome = record.validation
    if outcome is None:
        return "Not validated"
    if outcome.rules_checked == 0:
        return "No validation rules"
    rules = f"{outcome.rules_checked} rule{'s' if outcome.rules_checked != 1 else ''}"
    if outcome.passed:
        return f"Validation passed ({rules})"
    return escape_markdown(redact(f"Validation failed ({rules}): " + "; ".join(outcome.problems)))


def answer_for(record: RunRecord, redact: Redact) -> str:
    """The answer as the chat shows it (Markdown, sanitized by the component), with its end mark;
    a reasoning model's thoughts collapsed above it; a withheld answer (buffer mode, failed its
    rules) below the mark."""
    turn = turn_from_record(record, redact)
    thought = thought_details(turn.thought)
    if turn.outcome == "withheld":
        return thought + answer_markdown(turn) + "\n\n**The withheld answer:**\n\n" + code_block(turn.withheld)
    return thought + (answer_markdown(turn) if turn.answer or turn.outcome != "completed" else "_(empty answer)_")


def request_markdown(record: RunRecord, redact: Redact) -> str:
    """The request: model, system, messages, parameters, rules, timeouts, template and variables."""
    request = record.request
    parts = [f"**Model** · {escape_markdown(redact(str(request.get('model') or record.model)))}"]
    if record.template:
        label = template_label(record.template, record.template_hash)
        parts.append(f"**Template** · {escape_markdown(redact(label))}")
    if record.variables:
        parts += ["**Variables**", code_block(redact(_json(record.variables)))]
    system = request.get("system") or record.system
    parts += (["**System prompt**", code_block(redact(system))] if system else ["**System prompt** · none"])
    messages = request.get("messages") or []
    parts.append(f"**Messages** · {len(messages)}")
    for index, message in enumerate(messages, 1):
        role = str(message.get("role", "?")) if isinstance(message, dict) else "?"
        content = str(message.get("content", "")) if isinstance(message, dict) else str(message)
        parts += [f"{index}. _{escape_markdown(role)}_ · {len(content):,} characters", code_block(redact(content))]
    parameters = {k: request[k] for k in ("temperature", "max_output_tokens", "reasoning_effort", "cache_prompt")
                  if request.get(k) is not None}
    shown = escape_markdown(redact(_inline(parameters))) if parameters else "model defaults"
    parts.append(f"**Parameters** · {shown}")
    validation = request.get("validation") or {}
    parts.append("**Validation rules** · " + (escape_markdown(redact(_inline(validation))) if validation
                                               else "none (stream mode)"))
    timeouts = request.get("timeouts") or {}
    parts.append("**Timeouts** · " + (escape_markdown(redact(_inline(timeouts))) if timeouts else "server defaults"))
    return "\n\n".join(parts)


def template_markdown(content: str, redact: Redact) -> str:
    return code_block(redact(content))


# -- events ---------------------------------------------------------------------------------------
def events_rows(events: Sequence[RunEvent], redact: Redact, start: int = 0) -> list[list[str]]:
    """One row per event, runs of text (or reasoning) deltas collapsed into one 'text ×N' row."""
    rows: list[list[str]] = []
    for index, group in stretches(events):
        first, last = group[0], group[-1]
        if isinstance(first, TextDelta | ReasoningDelta):
            chars = sum(len(e.text) for e in group if isinstance(e, TextDelta | ReasoningDelta))
            count = len(group)
            positions = f"{start + index}" if count == 1 else f"{start + index}–{start + index + count - 1}"
            elapsed = _elapsed(first.elapsed) if count == 1 else f"{_elapsed(first.elapsed)}–{_elapsed(last.elapsed)}"
            rows.append([positions, f"{first.kind} ×{count}", elapsed, f"{chars:,} chars"])
        else:
            rows.append([str(start + index), first.kind, _elapsed(first.elapsed),
                         redact(excerpt(_summary(first), SUMMARY))])
    return rows


def _summary(event: RunEvent) -> str:
    if isinstance(event, Started):
        return event.model
    if isinstance(event, Retrying):
        return event.describe()
    if isinstance(event, Notice):
        return event.message
    if isinstance(event, Usage):
        approx = " (estimated)" if event.estimated else ""
        return f"{event.input_tokens or 0}→{event.output_tokens or 0} tokens{approx}"
    if isinstance(event, Validated):
        return "passed" if event.passed else "failed: " + "; ".join(event.problems)
    if isinstance(event, Completed):
        thoughts = f" · {len(event.reasoning):,} chars of reasoning" if event.reasoning else ""
        return f"{event.finish_reason} · {len(event.text):,} chars{thoughts}"
    if isinstance(event, Stopped):
        return f"{len(event.text):,} chars kept"
    if isinstance(event, (Failed, Interrupted)):
        return event.message
    return ""


# -- helpers --------------------------------------------------------------------------------------
def _short(content_hash: str | None) -> str | None:
    return content_hash[:12] if content_hash else None


def _number(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _elapsed(value: float) -> str:
    return f"{value:.2f}"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True)


def _inline(value: dict[str, Any]) -> str:
    return ", ".join(f"{key} {json.dumps(item, ensure_ascii=False)}" for key, item in sorted(value.items()))
