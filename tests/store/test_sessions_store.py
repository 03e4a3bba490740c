"""Login sessions in the run store, the same tests on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

from llmtool.store import SessionRecord
from llmtool.store.schema import sessions
from llmtool.store.sql import SqlRunStore

HOUR = 3600.0


def session(token_hash: str, user: str = "ann", created: float = 1000.0, last_seen: float | None = None,
            lifetime: float = 7 * 24 * HOUR) -> SessionRecord:
    return SessionRecord(token_hash=token_hash, user=user, created_at=created,
                         last_seen=created if last_seen is None else last_seen, expires_at=created + lifetime)


async def test_a_session_is_created_read_touched_and_deleted(store: SqlRunStore) -> None:
    made = session("a" * 64)
    await store.create_session(made)
    assert await store.get_session("a" * 64) == made
    assert await store.get_session("b" * 64) is None

    await store.touch_session("a" * 64, 1060.0)
    touched = await store.get_session("a" * 64)
    assert touched is not None and touched.last_seen == 1060.0 and touched.created_at == 1000.0
    await store.touch_session("a" * 64, 1030.0)  # an older touch (another process) never goes back
    assert (await store.get_session("a" * 64)).last_seen == 1060.0  # type: ignore[union-attr]

    assert await store.delete_session("a" * 64) is True
    assert await store.get_session("a" * 64) is None
    assert await store.delete_session("a" * 64) is False


async def test_only_the_hash_of_the_token_is_kept(store: SqlRunStore) -> None:
    await store.create_session(session("f" * 64, user="ann"))
    async with store.engine.connect() as connection:
        rows = (await connection.execute(sa.select(sessions))).mappings().all()
    assert [dict(row) for row in rows] == [{"token_hash": "f" * 64, "user": "ann", "created_at": 1000.0,
                                            "last_seen": 1000.0, "expires_at": 1000.0 + 7 * 24 * HOUR, "stamp": ""}]


async def test_every_session_of_a_user_can_be_ended(store: SqlRunStore) -> None:
    for name, user in (("1", "ann"), ("2", "ann"), ("3", "bob")):
        await store.create_session(session(name * 64, user=user))
    assert await store.delete_user_sessions("ann") == 2
    assert await store.get_session("1" * 64) is None and await store.get_session("2" * 64) is None
    assert await store.get_session("3" * 64) is not None
    assert await store.delete_user_sessions("nobody") == 0


async def test_purge_removes_idle_and_expired_sessions_only(store: SqlRunStore) -> None:
    now = 100 * HOUR
    await store.create_session(session("a" * 64, created=now - HOUR))  # fresh
    await store.create_session(session("b" * 64, created=now - 30 * HOUR, last_seen=now - 13 * HOUR))  # idle
    await store.create_session(session("c" * 64, created=now - 8 * 24 * HOUR, last_seen=now - 60))  # too old
    await store.create_session(session("d" * 64, created=now - 20 * HOUR, last_seen=now - 11 * HOUR))  # in use
    assert await store.purge_sessions(now, idle_seconds=12 * HOUR) == 2
    kept = [h for h in ("a", "b", "c", "d") if await store.get_session(h * 64) is not None]
    assert kept == ["a", "d"]
