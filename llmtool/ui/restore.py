"""A kept conversation back on the page: the store's records in, the chat's turns out.

    found = await load_conversation(context.service, conversation_id, user="ann")
    found.turns     # at each position the newest answer (a regenerated one replaces the earlier)
    found.live      # the last turn's run if it still streams in this process: follow it from event 0

Only the login that started a conversation gets it back (`refused` otherwise). A run the store
says is running but this process does not hold belongs to another process (or one that died and
is not yet marked interrupted): its stored text is shown with a note, never followed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from llmtool.events import Validated
from llmtool.service import LLMService, Run
from llmtool.service.conversations import current_turns
from llmtool.store import RunRecord
from llmtool.ui.status import RunProgress, escape_markdown, metrics_line, with_price_hint
from llmtool.ui.template_fields import template_label
from llmtool.ui.transcript import Thought, Turn, redacted

REFUSED = "⚠ That conversation belongs to another login; a new one starts here."
MISSING = "That conversation is no longer kept; a new one starts here."


@dataclass
class Restored:
    conversation_id: str
    turns: list[Turn] = field(default_factory=list)
    records: list[RunRecord] = field(default_factory=list)  # the shown run of each turn
    live: Run | None = None  # the last turn's run, held by this process (following it ends at once if it ended)
    refused: bool = False

    @property
    def last(self) -> RunRecord | None:
        return self.records[-1] if self.records else None


def turn_from_record(record: RunRecord, redact: Callable[[str], str]) -> Turn:
    """The turn as the page showed it when the run ended (or as far as the store has it)."""
    buffered = _buffered(record)
    validation = record.validation
    user, text = record.prompt, record.text
    if record.status == "completed" and buffered and validation is not None and not validation.passed:
        turn = Turn(user, "", "withheld", "; ".join(validation.problems), text)
    elif record.status == "completed":
        turn = Turn(user, text, "completed")
    elif record.status == "failed":
        turn = Turn(user, text, "failed", record.error_message or "")
    elif record.status in ("stopped", "interrupted"):
        turn = Turn(user, text, record.status)
    else:  # running, in another process: a buffered answer is not shown before it passed
        turn = Turn(user, "" if buffered else text, "elsewhere")
    turn = replace(turn, template=record.template, variables=record.variables,
                   conversation=record.conversation_id or "", thought=thought_of_record(record))
    return redacted(turn, redact)


def thought_of_record(record: RunRecord) -> Thought | None:
    """The stored thinking of a reasoning model's run (a silent one: its thinking time only)."""
    thinking_time = record.metrics.thinking_time if record.metrics is not None else None
    if not record.reasoning and thinking_time is None:
        return None
    return Thought(record.reasoning, thinking_time, done=record.status != "running")


def status_of_record(record: RunRecord, price_hint: str | None = None) -> str:
    """The status line of a run read back from the store (plain text: escape before showing);
    `price_hint` is said after a completed run whose cost is unknown."""
    if record.status == "completed":
        line = f"Done · {metrics_line(record.metrics)}" if record.metrics else "Done"
        line = with_price_hint(line, record.metrics, price_hint)
    elif record.status == "stopped":
        line = "Stopped · partial answer kept" if record.text else "Stopped"
    elif record.status == "failed":
        line = f"Failed: {record.error_message or 'unknown error'}"
    elif record.status == "interrupted":
        line = "Interrupted: the server stopped while this answer was written"
    else:
        line = "Still running in another server process"
    if record.template:
        line += f" · template {template_label(record.template, record.template_hash)}"
    return line


def validation_of_record(record: RunRecord) -> str:
    outcome = record.validation
    if outcome is None:
        return ""
    validated = Validated(passed=outcome.passed, problems=list(outcome.problems), rules_checked=outcome.rules_checked)
    return RunProgress(model=record.model, validated=validated).validation_line()


def page_lines(record: RunRecord | None, redact: Callable[[str], str], price_hint: str | None = None
               ) -> tuple[str, str]:
    """(status, validation) Markdown for a restored conversation's last run."""
    if record is None:
        return "", ""
    return (escape_markdown(redact(status_of_record(record, price_hint))),
            escape_markdown(redact(validation_of_record(record))))


def model_price_hint(service: LLMService, model_id: str) -> str | None:
    """How to price `model_id` if its cost is unknown (None when known, or for a model the
    catalogue cannot resolve any more)."""
    try:
        return service.catalog.price_hint(service.catalog.resolve(model_id))
    except Exception:  # a stored run of a provider no longer configured: no hint, no error
        return None


async def load_conversation(
    service: LLMService, conversation_id: str, user: str | None, redact: Callable[[str], str]
) -> Restored | None:
    """The conversation as the page should show it; None when the store has none of its runs."""
    store = service.store
    if store is None or not conversation_id:
        return None
    records = await store.conversation(conversation_id)
    if not records:
        return None
    if any(record.user != user for record in records):
        return Restored(conversation_id, refused=True)
    shown = current_turns(records)
    last = shown[-1]
    live: Run | None = None
    if last.status == "running":
        live = service.get(last.id)
        if live is None:  # ended and left memory since the read, or another process's run
            shown[-1] = last = await store.get_run(last.id) or last
    turns = [turn_from_record(record, redact) for record in shown]
    return Restored(conversation_id, turns, shown, live)


def _buffered(record: RunRecord) -> bool:
    validation = record.request.get("validation") or {}
    return isinstance(validation, dict) and validation.get("mode") == "buffer"
