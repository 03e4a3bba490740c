"""The run store's contract: what the service, the UI, the CLI and the API may ask of it.

    store = await open_store(settings)             # migrated, ready
    await store.save(new=[record], updates=[...])  # the service's writer, once a second
    page = await store.list_runs(RunQuery(text="invoice", status="failed"))
    events = await store.events(run_id, start=12)  # replay from position 12 on

One implementation (`SqlRunStore`) serves SQLite and PostgreSQL through SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmtool.events import RunEvent
from llmtool.store.records import (
    EvaluationCell,
    EvaluationRecord,
    RunPage,
    RunQuery,
    RunRecord,
    SessionRecord,
    TemplateVersion,
)
from llmtool.store.tokens import TokenRecord


class StoreError(Exception):
    """The store cannot be opened, migrated, read or written; `message` says why, for a person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class RunUpdate:
    """What changed in one run since its last write: new events from position `start` on, and
    columns to set (`text`, `status`, `validation`, `error_kind`, `error_message`, `metrics`,
    `ended_at`)."""

    run_id: str
    start: int
    events: list[RunEvent] = field(default_factory=list)
    columns: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Owner:
    """A process that runs runs."""

    id: str
    host: str
    pid: int
    started_at: float


class RunStore(Protocol):
    dialect: str

    async def save(self, new: list[RunRecord], updates: list[RunUpdate]) -> list[str]:
        """New runs and progress of known ones, in one transaction. Progress of a run the store holds as
        ended already is not written (a survivor marked it `interrupted` while its owner was stalled: the
        stored ending stands); the ids of those runs are returned."""

    async def get_run(self, run_id: str) -> RunRecord | None: ...

    async def events(self, run_id: str, start: int = 0) -> list[RunEvent]:
        """The run's stored events from position `start` on."""

    async def list_runs(self, query: RunQuery) -> RunPage:
        """Newest first, one page."""

    def iter_runs(self, query: RunQuery) -> AsyncIterator[RunRecord]:
        """Every run the filters select (not just a page), newest first, read in batches."""

    async def count_runs(self, query: RunQuery) -> int: ...

    async def conversation(self, conversation_id: str) -> list[RunRecord]:
        """Every run of a conversation by position, earlier siblings (regenerated answers) first."""

    async def delete_run(self, run_id: str) -> bool: ...

    async def delete_conversation(self, conversation_id: str) -> int: ...

    async def save_template(self, version: TemplateVersion) -> None:
        """Keep a template file's content once per content hash."""

    async def template(self, content_hash: str) -> TemplateVersion | None: ...

    async def add_evaluation(self, record: EvaluationRecord) -> None: ...

    async def finish_evaluation(self, evaluation_id: str, status: str, cells: list[EvaluationCell]) -> None: ...

    async def get_evaluation(self, evaluation_id: str) -> EvaluationRecord | None: ...

    async def heartbeat(self, owner: Owner) -> None: ...

    async def ping(self) -> None:
        """Ask the database the cheapest question (`/readyz`); raises when it does not answer."""

    async def retire(self, owner: Owner) -> None:
        """The process is going away cleanly."""

    async def interrupt_orphans(self, me: Owner, stale_after: float) -> list[str]:
        """Mark `interrupted` (keeping their partial text) the running runs whose owner is gone:
        its heartbeat older than `stale_after` seconds, or a process of this host that no longer
        exists. Never runs of `me` or of a live process. Returns their ids."""

    async def purge(self, older_than: float) -> int:
        """Delete runs created before this Unix time; returns how many."""

    async def claim_idempotency_key(self, user: str | None, key: str, run_id: str) -> str:
        """Tie a client's Idempotency-Key to `run_id` unless an earlier request holds it; returns
        the run id that owns the key. Atomic across processes."""

    async def shared_secret(self, name: str) -> str:
        """A random secret made once and shared by every process using this store."""

    # -- login sessions (keyed by a hash of the token; the token itself is never stored) ------------
    async def create_session(self, record: SessionRecord) -> None: ...

    async def get_session(self, token_hash: str) -> SessionRecord | None: ...

    async def touch_session(self, token_hash: str, last_seen: float) -> None:
        """The session was used at `last_seen` (Unix time)."""

    async def delete_session(self, token_hash: str) -> bool:
        """Log out one session; False when there was none."""

    async def delete_user_sessions(self, user: str) -> int:
        """Log out every session of `user` (a password change, a removed user); returns how many."""

    async def purge_sessions(self, now: float, idle_seconds: float) -> int:
        """Delete the sessions past their absolute end or unused for `idle_seconds`; returns how many."""

    # -- API tokens (keyed by a hash of the token, like sessions; `tokens.py`) -----------------------
    async def create_token(self, record: TokenRecord) -> None: ...

    async def token_by_hash(self, token_hash: str) -> TokenRecord | None: ...

    async def list_tokens(self, user: str) -> list[TokenRecord]:
        """The user's tokens, oldest first."""

    async def count_tokens(self, user: str) -> int: ...

    async def touch_token(self, token_hash: str, when: float) -> None:
        """The token was used at `when` (Unix time)."""

    async def delete_token(self, user: str, token_id: str) -> bool:
        """Revoke one of `user`'s tokens; False when they have none by that id."""

    async def delete_user_tokens(self, user: str) -> int:
        """Revoke every token of `user` (a password change, a removed user); returns how many."""

    async def aclose(self) -> None: ...
