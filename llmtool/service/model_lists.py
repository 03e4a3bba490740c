"""What each configured provider offers right now: its models endpoint, cached for a while.

The pickers offer these lists. When a provider cannot be asked (no network, a server that has no
models endpoint, a refused key) its configured models stand in, and the reason is kept to show.
What a list says of a model's abilities (Anthropic's efforts and thinking) goes into the catalogue,
so a reasoning effort the model does not take is refused before anything is sent.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time

from pydantic import BaseModel, ConfigDict

from llmtool.catalog import Catalog, ModelInfo
from llmtool.errors import LLMToolError
from llmtool.providers import ProviderPool
from llmtool.providers.registry import SPECS

log = logging.getLogger(__name__)
FAILURE_TTL = 60.0  # ask a failing provider again after this long, at most
# OpenAI's list holds every model of the account: keep the ones that answer text.
_NOT_TEXT = re.compile(r"embedding|tts|whisper|dall-e|davinci|babbage|moderation|image|audio|realtime|"
                       r"transcribe|search|sora|computer-use|instruct|deep-research")
_TEXT = re.compile(r"^(gpt-|o\d|chatgpt-|codex-)")


class ProviderModels(BaseModel):
    model_config = ConfigDict(frozen=True)

    provider: str
    models: list[ModelInfo]
    live: bool  # from the provider's own list (else the configured fallback)
    problem: str | None = None  # why the live list could not be had


class ModelLists:
    def __init__(self, catalog: Catalog, providers: ProviderPool, ttl: float) -> None:
        self.catalog = catalog
        self.providers = providers
        self.ttl = ttl
        self._cache: dict[str, tuple[float, ProviderModels]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def for_provider(self, provider: str) -> ProviderModels:
        """The provider's models: live when it answers (cached `ttl` seconds), else configured."""
        cached = self._cache.get(provider)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        lock = self._locks.setdefault(provider, asyncio.Lock())
        async with lock:  # many tabs opening at once ask the provider once
            cached = self._cache.get(provider)
            if cached is not None and cached[0] > time.monotonic():
                return cached[1]
            listed = await self._fetch(provider)
            ttl = self.ttl if listed.live else min(self.ttl, FAILURE_TTL)
            if ttl > 0:
                self._cache[provider] = (time.monotonic() + ttl, listed)
            return listed

    async def _fetch(self, provider: str) -> ProviderModels:
        configured = self.catalog.configured(provider)
        kind = self.catalog.provider_kind(provider)
        if not SPECS[kind].capabilities.lists_models:
            return ProviderModels(provider=provider, models=configured, live=False)
        try:
            adapter = self.providers.for_provider(provider)
            list_models = getattr(adapter, "list_models", None)
            if list_models is None:
                return ProviderModels(provider=provider, models=configured, live=False)
            listed = await asyncio.wait_for(list_models(), timeout=15.0)
        except (LLMToolError, TimeoutError) as error:
            problem = getattr(error, "message", None) or f"{provider} did not list its models in time"
            log.warning("could not list the models of %s: %s", provider, problem)
            return ProviderModels(provider=provider, models=configured, live=False, problem=problem)
        except Exception as error:  # a body the SDK cannot read (a proxy's HTML page, say)
            problem = f"{provider} answered its models list with something llmtool could not read"
            log.warning("could not list the models of %s: %s: %s", provider, type(error).__name__, error)
            return ProviderModels(provider=provider, models=configured, live=False, problem=problem)
        if kind == "openai":
            text = [m for m in listed if _TEXT.match(m.name) and not _NOT_TEXT.search(m.name)]
            listed = text or listed  # a proxy's own model names: keep them all
        learned = self.catalog.learn(provider, listed)
        names = {m.name for m in learned}
        # Configured models the list lacks stay offered: a fine-tune or an alias may be missing.
        extra = [self.catalog.resolve(m.id) for m in configured if m.name not in names]
        models = sorted(learned, key=lambda m: m.name) + extra
        return ProviderModels(provider=provider, models=models, live=True)

    async def all(self) -> list[ProviderModels]:
        """Every configured provider's models, real providers first, the demo last."""
        return list(await asyncio.gather(*(self.for_provider(p) for p in self.catalog.providers())))

    async def model_ids(self) -> list[str]:
        return [model.id for listed in await self.all() for model in listed.models]

    def forget(self) -> None:
        self._cache.clear()
