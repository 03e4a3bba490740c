"""Helpers shared by the UI tests (reading Gradio outputs, waiting for conditions)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

STOPPED_MARK = "_Stopped — partial answer._"


def answer_text(chat: Any) -> str | None:
    """The last assistant message of a Chatbot output as text; None if the output was skipped."""
    if not isinstance(chat, list):
        return None
    if not chat:
        return ""
    content = chat[-1]["content"]
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def strings(outputs: list[tuple[Any, ...]], index: int) -> list[str]:
    """Output `index` of every update that set it (skipped outputs arrive as update dicts)."""
    return [o[index] for o in outputs if isinstance(o[index], str)]


def wait_for(condition: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


def on_server_loop(context: Any, coroutine: Any, timeout: float = 10.0) -> Any:
    """Run `coroutine` on the server's event loop (the service and its store belong to it)."""
    import asyncio

    loop = context._loop  # the loop AppContext.start() ran on; no public handle, tests only
    assert loop is not None, "the server has not started the service yet"
    return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout)


def stored_run(context: Any, run_id: str) -> Any:
    """The run's record in the store, read on the server's loop."""
    service = context.started_service()
    assert service is not None
    return on_server_loop(context, service.record(run_id))


def app_context(server: Any) -> Any:
    """The AppContext of an app served by a BackgroundServer (create_app keeps it in app.state)."""
    return server.server.config.app.state.context


class ConfiguredModelLists:
    """A stand-in for `LLMService.model_lists` that never asks a provider: every provider's
    configured models, as when its live list cannot be had (`problem` says so, if given).

    The UI tests' providers are the loopback server: with this, a page load makes no listing
    request, so tests that count the provider's requests count only their runs. Installed for
    every service of tests/ui (conftest.py); the tests of the live lists put a real `ModelLists`
    back (`live_model_lists`).
    """

    def __init__(self, catalog: Any, providers: Any = None, ttl: float = 0.0, problem: str | None = None) -> None:
        self.catalog, self.problem = catalog, problem
        self.calls = 0

    async def all(self) -> list[Any]:
        from llmtool.service.model_lists import ProviderModels

        self.calls += 1
        return [ProviderModels(provider=p, models=self.catalog.of_provider(p), live=False,
                               problem=self.problem if p != "demo" else None)
                for p in self.catalog.providers()]

    async def model_ids(self) -> list[str]:
        return [m.id for listed in await self.all() for m in listed.models]

    def forget(self) -> None:
        pass


def live_model_lists(server: Any) -> Any:
    """Give a served app's service the real model lists (asking the providers) again."""
    from llmtool.service.model_lists import ModelLists

    service = app_context(server).started_service()
    assert service is not None
    service.model_lists = ModelLists(service.catalog, service.providers, service.settings.model_list_ttl)
    return service.model_lists
