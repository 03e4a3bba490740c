"""Every store test runs on both backends (`store_url`, in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from llmtool.store import open_store
from llmtool.store.sql import SqlRunStore


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[SqlRunStore]:
    opened = await open_store(store_url)
    try:
        yield opened
    finally:
        await opened.aclose()
