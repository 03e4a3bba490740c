"""Open the run store named by a URL, migrated and ready, or a `StoreError` that says why not.

    store = await open_store("sqlite+aiosqlite:////home/me/.local/share/llmtool/llmtool.db")
    store = await open_store("postgresql+asyncpg://llmtool:pw@db/llmtool")

With no URL configured the store is SQLite in the user's data directory (`default_database_url`),
like `llm`'s logs.db: `~/.local/share/llmtool/llmtool.db` on Linux.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import platformdirs
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

from llmtool.store import migrate
from llmtool.store.protocol import StoreError
from llmtool.store.sql import SqlRunStore

DATABASE_FILE = "llmtool.db"
SUPPORTED = ("sqlite+aiosqlite", "postgresql+asyncpg")
OPEN_TIMEOUT = 15.0


def default_database_path() -> Path:
    return Path(platformdirs.user_data_dir("llmtool", appauthor=False)) / DATABASE_FILE


def default_database_url() -> str:
    return f"sqlite+aiosqlite:///{default_database_path()}"


def normalize_url(url: str) -> str:
    """Accept the short forms people type (`sqlite:///x.db`, `postgresql://…`, a bare path)."""
    url = url.strip()
    if "://" not in url:
        return f"sqlite+aiosqlite:///{Path(url).expanduser().absolute()}"
    scheme, rest = url.split("://", 1)
    scheme = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg",
              "postgres": "postgresql+asyncpg"}.get(scheme, scheme)
    return f"{scheme}://{rest}"


def describe_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "(an unreadable URL)"


async def open_store(url: str | None = None) -> SqlRunStore:
    url = normalize_url(url) if url else default_database_url()
    shown = describe_url(url)
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise StoreError(f"the database URL is not a valid URL: {shown}") from None
    if parsed.drivername not in SUPPORTED:
        raise StoreError(
            f"the database URL must start with sqlite+aiosqlite:/// or postgresql+asyncpg://, not "
            f"{parsed.drivername}://"
        )
    sqlite_path = _sqlite_path(parsed.database) if parsed.drivername.startswith("sqlite") else None
    options: dict[str, Any] = {}
    if sqlite_path is not None:
        options["connect_args"] = {"timeout": 30}
    else:
        options["connect_args"] = {"timeout": OPEN_TIMEOUT, "command_timeout": 60}
        options["pool_pre_ping"] = True
    try:
        engine = create_async_engine(url, **options)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise StoreError(f"cannot use the database {shown}: {exc}") from None
    if sqlite_path is not None:
        sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    store = SqlRunStore(engine)
    try:
        async with asyncio.timeout(OPEN_TIMEOUT * 2):
            await migrate.upgrade(engine, sqlite_path)
    except TimeoutError:
        await engine.dispose()
        raise StoreError(f"the database {shown} did not answer within {OPEN_TIMEOUT * 2:g} s") from None
    except (OperationalError, DBAPIError) as exc:
        await engine.dispose()
        raise StoreError(f"cannot open the database {shown}: {_reason(exc)}") from None
    except (SQLAlchemyError, OSError) as exc:
        await engine.dispose()
        raise StoreError(f"cannot open the database {shown}: {_reason(exc)}") from None
    return store


def _sqlite_path(database: str | None) -> Path:
    if not database or database == ":memory:":
        raise StoreError("the run store needs a SQLite file (sqlite+aiosqlite:///path/to/llmtool.db), "
                         "not an in-memory database")
    path = Path(database).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the folder for the database {path}: {exc.strerror}") from None
    if path.parent.exists() and not os.access(path.parent, os.W_OK):
        raise StoreError(f"cannot write the database {path}: its folder is read-only")
    return path


def _sqlite_pragmas(connection: Any, _: Any) -> None:
    cursor = connection.cursor()
    # WAL: readers (history) never wait for the writer; NORMAL is durable across a process crash.
    # secure_delete: a deleted run's text does not linger in free pages of the file.
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=10000",
                   "secure_delete=ON"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _reason(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip().splitlines()[0] if str(original).strip() else type(original).__name__
    return text[:300]
