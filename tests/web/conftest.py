"""Fixtures of the tests under tests/web (the browser, the stores, the loopback server and the clean
environment come from tests/conftest.py). A module that uses `http` defines `served`: its app's BackgroundServer."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest


@pytest.fixture
def http(served) -> Iterator[httpx.Client]:  # type: ignore[no-untyped-def]
    """A client of the module's server that keeps cookies, like a browser (a form's CSRF token and its
    cookie go together)."""
    with httpx.Client(base_url=served.url, timeout=10) as client:
        yield client


@pytest.fixture
def open_page(browser) -> Iterator:  # type: ignore[no-untyped-def]
    """`open_page(**options)`: a page in a new Chromium context with these options (closed after the test)."""
    contexts = []

    def open_(**options):  # type: ignore[no-untyped-def]
        contexts.append(browser.new_context(**options))
        page = contexts[-1].new_page()
        page.set_default_timeout(15_000)
        return page

    yield open_
    for context in contexts:
        context.close()
