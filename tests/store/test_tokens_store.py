"""API tokens in the run store (migration 0005), the same tests on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

from llmtool.store import SessionRecord
from llmtool.store.schema import api_tokens
from llmtool.store.sql import SqlRunStore
from llmtool.store.tokens import TokenRecord


def token(id: str, user: str = "ann", created: float = 1000.0, stamp: str = "s1") -> TokenRecord:
    return TokenRecord(id=id, token_hash=id[0] * 64, user=user, name=f"token {id}", stamp=stamp, created_at=created)


async def test_a_token_is_created_found_by_its_hash_listed_touched_and_revoked(store: SqlRunStore) -> None:
    await store.create_token(token("aaaa1", created=1000.0))
    await store.create_token(token("bbbb2", created=2000.0))
    await store.create_token(token("cccc3", user="bob"))
    assert await store.token_by_hash("a" * 64) == token("aaaa1")
    assert await store.token_by_hash("f" * 64) is None
    assert [t.id for t in await store.list_tokens("ann")] == ["aaaa1", "bbbb2"]  # oldest first
    assert await store.count_tokens("ann") == 2 and await store.count_tokens("carl") == 0

    await store.touch_token("a" * 64, 1500.0)
    await store.touch_token("a" * 64, 1400.0)  # an older touch (another process) never goes back
    assert (await store.token_by_hash("a" * 64)).last_used == 1500.0  # type: ignore[union-attr]

    assert await store.delete_token("bob", "aaaa1") is False  # only one's own
    assert await store.delete_token("ann", "aaaa1") is True
    assert await store.token_by_hash("a" * 64) is None
    assert await store.delete_user_tokens("ann") == 1 and await store.list_tokens("ann") == []
    assert [t.id for t in await store.list_tokens("bob")] == ["cccc3"]


async def test_only_the_hash_of_a_token_is_kept(store: SqlRunStore) -> None:
    await store.create_token(token("dddd4"))
    async with store.engine.connect() as connection:
        rows = (await connection.execute(sa.select(api_tokens))).mappings().all()
    assert [dict(row) for row in rows] == [{"id": "dddd4", "token_hash": "d" * 64, "user": "ann", "name": "token dddd4",
                                            "stamp": "s1", "created_at": 1000.0, "last_used": None}]


async def test_a_session_keeps_the_stamp_of_the_password_it_was_opened_with(store: SqlRunStore) -> None:
    record = SessionRecord(token_hash="e" * 64, user="ann", created_at=1.0, last_seen=1.0, expires_at=9.0, stamp="abc")
    await store.create_session(record)
    assert await store.get_session("e" * 64) == record


async def test_the_usage_queries_have_their_index_on_user_and_time(store: SqlRunStore) -> None:
    async with store.engine.connect() as connection:
        indexes = await connection.run_sync(lambda sync: sa.inspect(sync).get_indexes("runs"))
    assert any(index["name"] == "runs_user_created" and index["column_names"] == ["user", "created_at"]
               for index in indexes)
