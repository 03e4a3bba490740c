"""A conversation as stored: its turns, and the messages a provider is sent to continue it.

A conversation is the runs sharing a `conversation_id`, one turn per `position`; Regenerate adds a
sibling at the same position, and the newest sibling is the turn's current answer.

    records = await store.conversation(conversation_id)
    turns = current_turns(records)          # one record per position, newest sibling
    messages = continuation(turns)          # what the model said, for the next request
"""

from __future__ import annotations

from llmtool.providers.base import ChatMessage
from llmtool.store import ENDED_STATUSES, RunRecord


def current_turns(records: list[RunRecord]) -> list[RunRecord]:
    """Per position, the newest sibling (records come ordered by position, then creation)."""
    latest: dict[int, RunRecord] = {}
    for record in records:
        latest[record.position or 0] = record
    return [latest[position] for position in sorted(latest)]


def continuation(turns: list[RunRecord]) -> list[ChatMessage]:
    """The conversation as the provider should see it: each ended turn whose model said something,
    as its prompt and answer (a turn with no answer — failed early, still running — is left out)."""
    messages: list[ChatMessage] = []
    for turn in turns:
        if turn.status not in ENDED_STATUSES or not turn.text.strip():
            continue
        messages.append(ChatMessage(role="user", content=turn.prompt))
        messages.append(ChatMessage(role="assistant", content=turn.text))
    return messages


def pending(turns: list[RunRecord]) -> RunRecord | None:
    """The turn still being answered, if any (a conversation takes one question at a time)."""
    return next((turn for turn in reversed(turns) if not turn.ended), None)
