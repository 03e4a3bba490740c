"""The run store: every run kept, with its events, for history, replay and search.

    store = await open_store(settings.database_url)     # SQLite by default, or PostgreSQL
    page = await store.list_runs(RunQuery(status="failed", text="invoice"))

See `protocol.py` for what it offers and `records.py` for what it keeps.
"""

from llmtool.store.open import default_database_path, default_database_url, describe_url, open_store
from llmtool.store.protocol import Owner, RunStore, RunUpdate, StoreError
from llmtool.store.records import (
    ENDED_STATUSES,
    CellAssertion,
    CellRun,
    EvaluationCell,
    EvaluationRecord,
    RunOrigin,
    RunPage,
    RunQuery,
    RunRecord,
    RunSource,
    RunStatus,
    SessionRecord,
    TemplateVersion,
    ValidationOutcome,
    search_words,
)

__all__ = [
    "ENDED_STATUSES",
    "CellAssertion",
    "CellRun",
    "EvaluationCell",
    "EvaluationRecord",
    "Owner",
    "RunOrigin",
    "RunPage",
    "RunQuery",
    "RunRecord",
    "RunSource",
    "RunStatus",
    "RunStore",
    "RunUpdate",
    "SessionRecord",
    "StoreError",
    "TemplateVersion",
    "ValidationOutcome",
    "default_database_path",
    "default_database_url",
    "describe_url",
    "open_store",
    "search_words",
]
