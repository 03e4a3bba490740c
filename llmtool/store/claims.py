"""Giving back an Idempotency-Key claimed for a run that a limit then refused (`web/api.py`).

    await release_idempotency_key(store, "ann", "key-1", run_id)   # only if run_id still holds it

A refused request started nothing, so a retry with the same key (after the Retry-After the refusal
gave) must be a new request, not a wait for a run that never came. A store that is not the SQL one
(none other exists today) keeps nothing to give back.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from llmtool.store.protocol import RunStore
from llmtool.store.schema import idempotency_keys


async def release_idempotency_key(store: RunStore | None, user: str | None, key: str, run_id: str) -> None:
    engine = getattr(store, "engine", None)
    if not isinstance(engine, AsyncEngine):
        return
    async with engine.begin() as connection:
        await connection.execute(idempotency_keys.delete().where(
            idempotency_keys.c.user == (user or ""), idempotency_keys.c.key == key,
            idempotency_keys.c.run_id == run_id,
        ))
