"""A loopback provider server and a service wired to it for all three protocols."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llmtool.loopback import LoopbackServer
from llmtool.service import LLMService
from llmtool.settings import load_settings

# One model per wire protocol: Responses, Chat Completions (an OpenAI-compatible endpoint), Messages.
PROTOCOL_MODELS = {
    "responses": "openai:gpt-4.1-mini",
    "chat": "local:test-model",
    "messages": "anthropic:claude-haiku-4-5",
}


@pytest.fixture
def server(loopback: LoopbackServer) -> Iterator[LoopbackServer]:
    loopback.reset()
    yield loopback
    # Our retries are the only retries: the SDKs' own must never have fired.
    assert {r.headers.get("x-stainless-retry-count") for r in loopback.requests} <= {"0"}


def service_for(server: LoopbackServer, **overrides) -> LLMService:
    return service_at(server.openai_base_url, server.anthropic_base_url, **overrides)


def service_at(openai_base_url: str, anthropic_base_url: str, **overrides) -> LLMService:
    """A service whose three protocols talk to these base URLs, with fast retries."""
    settings = {
        "OPENAI_API_KEY": "sk-loopback",
        "OPENAI_BASE_URL": openai_base_url,
        "ANTHROPIC_API_KEY": "sk-ant-loopback",
        "ANTHROPIC_BASE_URL": anthropic_base_url,
        "endpoints": {"local": {"base_url": openai_base_url, "models": ["test-model"]}},
        "retry": {"max_attempts": 4, "initial_delay": 0.01, "max_delay": 0.05, "jitter": 0.0},
        "timeouts": {"connect": 2, "first_token": 5, "idle": 5, "total": 20},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(settings.get(key), dict):
            settings[key] = {**settings[key], **value}
        else:
            settings[key] = value
    return LLMService(load_settings(**settings))


@pytest.fixture(params=list(PROTOCOL_MODELS))
def protocol(request: pytest.FixtureRequest) -> str:
    return request.param
