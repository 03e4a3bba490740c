"""Thread-safe log of served requests and the FIFO of scripted scenarios."""

from __future__ import annotations

import sys
import threading
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, computed_field

from .protocols import requested_schema
from .scenarios import Scenario


class RecordedRequest(BaseModel):
    """One request as the server saw it. Times are ``time.monotonic()`` values."""

    index: int
    method: str
    path: str  # endpoint path: the /scenario/<name> prefix and query string removed
    target: str  # request-target exactly as received
    headers: dict[str, str]  # lower-cased names
    body: Any = None  # parsed JSON, None when absent or not JSON
    protocol: str | None = None  # "responses" | "chat" | "messages" | "models" (GET /v1/models) | None (no route)
    preset: str | None = None  # from the URL prefix, if any
    scenario_kind: str | None = None  # None when the request never reached a scenario (404, 405)
    status: int | None = None  # HTTP status sent; None when reset before responding
    received_at: float
    closed_at: float | None = None
    closed_by_client: bool = False  # the client left before we finished writing
    deltas_sent: int = 0  # answer text deltas
    reasoning_deltas_sent: int = 0  # reasoning/thinking deltas (none when the reasoning is omitted)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def structured_output(self) -> dict[str, Any] | None:
        """The JSON schema the request asked for; see the module-level ``structured_output``."""
        return structured_output(self)


def structured_output(record: RecordedRequest) -> dict[str, Any] | None:
    """The JSON schema ``record`` asked for in its protocol's own field, else None.

    Responses: the ``text.format`` object (``{"type": "json_schema", "name", "schema", "strict"}``);
    Chat: ``response_format.json_schema`` (``{"name", "schema", "strict"}``); Messages: the
    ``output_config.format`` object (``{"type": "json_schema", "schema"}``). Formats without a
    schema (``json_object``, ``text``) and other routes give None.
    """
    found = requested_schema(record.protocol, record.body)
    return found[1] if found is not None else None


class RequestLog:
    """Records plus scenario queue behind one lock; a condition wakes ``wait_closed``."""

    def __init__(self, on_closed: Callable[[RecordedRequest], None] | None = None):
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._records: list[RecordedRequest] = []
        self._queue: deque[Scenario] = deque()
        self._listing_queue: deque[Scenario] = deque()  # for GET /v1/models, apart from answers
        self._on_closed = on_closed

    def enqueue(self, scenarios: list[Scenario], *, listing: bool = False) -> None:
        with self._lock:
            queue = self._listing_queue if listing else self._queue
            queue.extend(s.model_copy(deep=True) for s in scenarios)

    def next_scenario(self, *, listing: bool = False) -> Scenario | None:
        with self._lock:
            queue = self._listing_queue if listing else self._queue
            return queue.popleft() if queue else None

    def queued(self) -> int:
        with self._lock:
            return len(self._queue)

    def add(self, **fields: Any) -> RecordedRequest:
        """Append a record and return it; later changes go through ``update``/``close``."""
        with self._changed:
            record = RecordedRequest(index=len(self._records), **fields)
            self._records.append(record)
            self._changed.notify_all()
            return record

    # Callers hold the record object rather than its index, so a reset() during a
    # request cannot make a stale connection overwrite a newer record.
    def update(self, record: RecordedRequest, **fields: Any) -> None:
        with self._changed:
            for name, value in fields.items():
                setattr(record, name, value)
            self._changed.notify_all()

    def close(self, record: RecordedRequest, closed_at: float, *, by_client: bool) -> None:
        with self._changed:
            if record.closed_at is not None:
                return
            record.closed_at = closed_at
            record.closed_by_client = by_client
            snapshot = record.model_copy(deep=True)
            self._changed.notify_all()
        if self._on_closed is not None:
            try:
                self._on_closed(snapshot)
            except Exception:  # a logging hook must not break the server
                traceback.print_exc(file=sys.stderr)

    def snapshot(self) -> list[RecordedRequest]:
        with self._lock:
            return [r.model_copy(deep=True) for r in self._records]

    def wait(self, predicate: Callable[[list[RecordedRequest]], bool], timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self._records), timeout)

    def reset(self) -> None:
        with self._changed:
            self._records.clear()
            self._queue.clear()
            self._listing_queue.clear()
            self._changed.notify_all()
