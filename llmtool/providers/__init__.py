"""Provider adapters, one module each, and the pool that builds them from settings."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from llmtool.errors import InvalidRequestError
from llmtool.providers.base import (
    ChatMessage,
    FinishChunk,
    Provider,
    ProviderChunk,
    ProviderRequest,
    ReasoningChunk,
    TextChunk,
    UsageChunk,
)
from llmtool.providers.registry import spec_for
from llmtool.settings import Settings

if TYPE_CHECKING:
    from llmtool.catalog import Catalog, ModelInfo

log = logging.getLogger(__name__)
__all__ = [
    "ChatMessage",
    "FinishChunk",
    "Provider",
    "ProviderChunk",
    "ProviderPool",
    "ProviderRequest",
    "ReasoningChunk",
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
        return self.for_provider(model.provider)

    def for_provider(self, provider_name: str) -> Provider:
        provider = self._providers.get(provider_name)
        if provider is None:
            kind = self.catalog.provider_kind(provider_name)
            try:
                provider = spec_for(kind).build(self.settings, provider_name)
            except Exception as exc:  # an SDK refusing its settings: the user's to fix
                raise InvalidRequestError(
                    f"cannot set up {provider_name}: {type(exc).__name__}: {exc}"
                ) from None
            self._providers[provider_name] = provider
        return provider

    def built(self) -> dict[str, Provider]:
        """The adapters built so far, by provider name."""
        return dict(self._providers)

    async def aclose(self) -> None:
        providers, self._providers = list(self._providers.values()), {}
        for provider in providers:
            try:
                await provider.aclose()
            except Exception:  # one client failing to close must not leave the others open
                log.warning("could not close the %s client", provider.name, exc_info=True)
