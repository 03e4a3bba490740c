"""Bring a database's schema up to date, one process at a time.

Several processes of a deployment may start at once: PostgreSQL serializes them with an advisory
lock, SQLite with a lock file beside the database. The second one then finds the schema current.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

SCRIPT_LOCATION = "llmtool.store:migrations"
ADVISORY_LOCK_KEY = 0x6C6C6D746F6F6C  # "llmtool"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(engine: AsyncEngine, sqlite_path: Path | None) -> None:
    """Apply every migration the database lacks (under the lock)."""
    async with _file_lock(sqlite_path), engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
            await connection.commit()
        try:
            await connection.run_sync(_upgrade)
            await connection.commit()
        finally:
            if engine.dialect.name == "postgresql":
                await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
                await connection.commit()


def _upgrade(connection: Connection) -> None:
    if current_revision(connection) != head_revision():
        command.upgrade(alembic_config(connection), "head")


@asynccontextmanager
async def _file_lock(database: Path | None) -> AsyncIterator[None]:
    if database is None:
        yield
        return
    lock_path = database.with_name(database.name + ".migrate-lock")
    descriptor = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        # flock blocks: wait for it in a thread, not on the event loop.
        await asyncio.to_thread(fcntl.flock, descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock
