"""API tokens in the run store: what `SqlRunStore`'s token methods run.

    await store.create_token(TokenRecord(id=…, token_hash=sha256(token), user="ann", name="ci", …))
    record = await store.token_by_hash(sha256(token))     # None: unknown or revoked
    await store.delete_token("ann", record.id)            # revoke (only one's own)
    await store.delete_user_tokens("ann")                 # a new password, a removed user

Only the SHA-256 of a token is kept: a copy of the database gives no working token.
"""

from __future__ import annotations

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncEngine

from llmtool.store.schema import api_tokens

MAX_PER_USER = 100


class TokenRecord(BaseModel):
    """An API token as the store keeps it. `id` is public (a user names it to revoke it); the token
    itself is only ever shown once, when it is made."""

    model_config = ConfigDict(frozen=True)

    id: str
    token_hash: str
    user: str
    name: str
    stamp: str = ""  # a digest of the password hash it was made under (see SessionRecord.stamp)
    created_at: float
    last_used: float | None = None


async def create_token(engine: AsyncEngine, record: TokenRecord) -> None:
    async with engine.begin() as connection:
        await connection.execute(api_tokens.insert().values(**record.model_dump()))


async def token_by_hash(engine: AsyncEngine, token_hash: str) -> TokenRecord | None:
    async with engine.connect() as connection:
        row = (
            await connection.execute(sa.select(api_tokens).where(api_tokens.c.token_hash == token_hash))
        ).mappings().first()
    return None if row is None else TokenRecord(**row)


async def list_tokens(engine: AsyncEngine, user: str) -> list[TokenRecord]:
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                sa.select(api_tokens).where(api_tokens.c.user == user)
                .order_by(api_tokens.c.created_at, api_tokens.c.id).limit(MAX_PER_USER * 2)
            )
        ).mappings().all()
    return [TokenRecord(**row) for row in rows]


async def count_tokens(engine: AsyncEngine, user: str) -> int:
    async with engine.connect() as connection:
        count = (
            await connection.execute(sa.select(sa.func.count()).select_from(api_tokens)
                                     .where(api_tokens.c.user == user))
        ).scalar_one()
    return int(count)


async def touch_token(engine: AsyncEngine, token_hash: str, when: float) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            api_tokens.update().where(api_tokens.c.token_hash == token_hash,
                                      sa.or_(api_tokens.c.last_used.is_(None), api_tokens.c.last_used < when))
            .values(last_used=when)
        )


async def delete_token(engine: AsyncEngine, user: str, token_id: str) -> bool:
    async with engine.begin() as connection:
        result = await connection.execute(
            api_tokens.delete().where(api_tokens.c.id == token_id, api_tokens.c.user == user)
        )
    return bool(result.rowcount)


async def delete_user_tokens(engine: AsyncEngine, user: str) -> int:
    async with engine.begin() as connection:
        result = await connection.execute(api_tokens.delete().where(api_tokens.c.user == user))
    return int(result.rowcount or 0)
