"""Opening the store: migrations at start-up (once, even with several processes), clear errors."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmtool.store import StoreError, default_database_path, open_store
from llmtool.store.open import normalize_url
from tests.servers.postgres import _free_port

OPEN_AND_WRITE = """
import asyncio, sys
from llmtool.store import open_store, RunRecord
async def main():
    store = await open_store(sys.argv[1])
    await store.save([RunRecord(id=sys.argv[2], model="demo:echo", request={}, prompt="p")], [])
    await store.aclose()
asyncio.run(main())
"""


def test_several_processes_starting_at_once_migrate_once(store_url: str) -> None:
    processes = [
        subprocess.Popen([sys.executable, "-c", OPEN_AND_WRITE, store_url, f"p{i}"], stderr=subprocess.PIPE)
        for i in range(4)
    ]
    for process in processes:
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err.decode()


async def test_reopening_a_migrated_store_keeps_its_runs(store_url: str) -> None:
    from llmtool.store import RunQuery, RunRecord

    store = await open_store(store_url)
    await store.save([RunRecord(id="kept", model="demo:echo", request={}, prompt="p")], [])
    await store.aclose()
    again = await open_store(store_url)
    try:
        assert [r.id for r in (await again.list_runs(RunQuery())).runs] == ["kept"]
    finally:
        await again.aclose()


async def test_a_folder_that_cannot_be_made_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")  # even root cannot make a folder inside a file
    with pytest.raises(StoreError, match=r"cannot create the folder for the database .*a-file/sub/runs\.db: Not a directory"):
        await open_store(f"sqlite+aiosqlite:///{tmp_path / 'a-file' / 'sub' / 'runs.db'}")


async def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=r"cannot open the database .*garbage\.db: file is not a database"):
        await open_store(f"sqlite+aiosqlite:///{path}")


async def test_a_folder_where_the_file_should_be_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open the database"):
        await open_store(f"sqlite+aiosqlite:///{tmp_path}")


@pytest.mark.parametrize(("url", "message"), [
    ("mysql://u:p@localhost/db", "must start with sqlite+aiosqlite:/// or postgresql+asyncpg://"),
    ("sqlite+aiosqlite:///:memory:", "needs a SQLite file"),
    ("postgresql+asyncpg://bob:hunter2@[::1/db", "not a valid URL"),
])
async def test_a_wrong_url_is_a_clear_error_without_the_password(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=re.escape(message)) as caught:
        await open_store(url)
    assert "hunter2" not in caught.value.message


async def test_a_server_that_is_down_is_a_clear_error_quickly() -> None:
    port = _free_port()
    started = time.monotonic()
    with pytest.raises(StoreError) as caught:
        await open_store(f"postgresql+asyncpg://llmtool:hunter2@127.0.0.1:{port}/llmtool")
    assert time.monotonic() - started < 10
    assert f"cannot open the database postgresql+asyncpg://llmtool:***@127.0.0.1:{port}/llmtool" in caught.value.message
    assert "hunter2" not in caught.value.message


def test_short_forms_people_type_are_accepted(tmp_path: Path) -> None:
    assert normalize_url("sqlite:///x.db") == "sqlite+aiosqlite:///x.db"
    assert normalize_url("postgres://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert normalize_url(str(tmp_path / "a.db")) == f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"


def test_the_default_store_is_in_the_users_data_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_database_path() == tmp_path / "llmtool" / "llmtool.db"
