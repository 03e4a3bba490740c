"""Provider adapters, one module each, and the pool that builds them from settings."""

from __future__ import annotations

import logging

from llmtool.catalog import Catalog, ModelInfo
from llmtool.errors import InvalidRequestError
from llmtool.providers.base import (
    ChatMessage,
    FinishChunk,
    Provider,
    ProviderChunk,
    ProviderRequest,
    TextChunk,
    UsageChunk,
)
from llmtool.settings import Settings

log = logging.getLogger(__name__)
__all__ = [
    "ChatMessage",
    "FinishChunk",
    "Provider",
    "ProviderChunk",
    "ProviderPool",
    "ProviderRequest",
    "TextChunk",
    "UsageChunk",
]


class ProviderPool:
    """One adapter (so one SDK client and connection pool) per configured provider, built lazily."""

    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self._providers: dict[str, Provider] = {}

    def for_model(self, model: ModelInfo) -> Provider:
        provider = self._providers.get(model.provider)
        if provider is None:
            try:
                provider = self._build(model)
            except Exception as exc:  # an SDK refusing its settings: the user's to fix
                raise InvalidRequestError(
                    f"cannot set up {model.provider}: {type(exc).__name__}: {exc}"
                ) from None
            self._providers[model.provider] = provider
        return provider

    def _build(self, model: ModelInfo) -> Provider:
        s = self.settings
        if model.kind == "demo":
            from llmtool.providers.demo import DemoProvider

            return DemoProvider(model.provider, s.demo)
        if model.kind == "openai":
            from llmtool.providers.openai_responses import OpenAIResponsesProvider

            assert s.openai_api_key is not None  # the catalogue refused the model otherwise
            return OpenAIResponsesProvider(
                model.provider, s.openai_api_key.get_secret_value(), s.openai_base_url
            )
        if model.kind == "anthropic":
            from llmtool.providers.anthropic import AnthropicProvider

            assert s.anthropic_api_key is not None
            return AnthropicProvider(
                model.provider, s.anthropic_api_key.get_secret_value(), s.anthropic_base_url
            )
        from llmtool.providers.openai_chat import OpenAIChatProvider

        endpoint = s.endpoints[model.provider]
        return OpenAIChatProvider(model.provider, endpoint.key(), endpoint.base_url)

    async def aclose(self) -> None:
        providers, self._providers = list(self._providers.values()), {}
        for provider in providers:
            try:
                await provider.aclose()
            except Exception:  # one client failing to close must not leave the others open
                log.warning("could not close the %s client", provider.name, exc_info=True)
