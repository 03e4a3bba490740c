"""The provider kinds llmtool speaks, one spec each: the only place that knows them all.

A spec says where a provider's key and base URL come from, how to build its adapter (imported only
when first used, so starting the CLI does not import every SDK) and what its protocol can do.
Adding a provider kind is an adapter module plus one entry here (and its key in `Settings`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import SecretStr

from llmtool.settings import Settings

if TYPE_CHECKING:
    from llmtool.providers.base import Provider

ProviderKind = Literal["openai", "anthropic", "openai_compatible", "demo"]


@dataclass(frozen=True)
class Capabilities:
    """What the protocol can be asked for (a given model may still refuse)."""

    structured_output: bool = True
    reasoning: bool = True
    prompt_cache: bool = False
    temperature: bool = True
    lists_models: bool = True
    lists_capabilities: bool = False  # its model list says which efforts and thinking each takes
    signals_thinking: bool = True  # the stream shows a model began to think, even silently
    any_model: bool = True  # any model name is passed through; False: only the catalogue's


@dataclass(frozen=True)
class ProviderSpec:
    kind: ProviderKind
    label: str
    adapter: str = ""  # "module:Class"; the class takes (name, api_key, base_url)
    key_variable: str | None = None
    key_setting: str | None = None  # the Settings field holding the key
    base_url_setting: str | None = None
    capabilities: Capabilities = Capabilities()

    def key(self, settings: Settings, provider: str) -> str | None:
        if self.kind == "openai_compatible":
            return settings.endpoints[provider].key()
        value = getattr(settings, self.key_setting) if self.key_setting else None
        return value.get_secret_value() if isinstance(value, SecretStr) else value

    def base_url(self, settings: Settings, provider: str) -> str | None:
        if self.kind == "openai_compatible":
            return settings.endpoints[provider].base_url
        return getattr(settings, self.base_url_setting) if self.base_url_setting else None

    def is_configured(self, settings: Settings, provider: str) -> bool:
        if self.kind == "openai_compatible":
            return provider in settings.endpoints
        return self.key_setting is None or getattr(settings, self.key_setting) is not None

    def build(self, settings: Settings, provider: str) -> Provider:
        if self.kind == "demo":
            from llmtool.providers.demo import DemoProvider

            return DemoProvider(provider, settings.demo)
        module, _, name = self.adapter.partition(":")
        adapter: Callable[..., Provider] = getattr(importlib.import_module(module), name)
        return adapter(provider, self.key(settings, provider) or "", self.base_url(settings, provider))


SPECS: dict[ProviderKind, ProviderSpec] = {
    "openai": ProviderSpec(
        kind="openai",
        label="OpenAI (Responses API)",
        adapter="llmtool.providers.openai_responses:OpenAIResponsesProvider",
        key_variable="OPENAI_API_KEY",
        key_setting="openai_api_key",
        base_url_setting="openai_base_url",
    ),
    "anthropic": ProviderSpec(
        kind="anthropic",
        label="Anthropic (Messages API)",
        adapter="llmtool.providers.anthropic:AnthropicProvider",
        key_variable="ANTHROPIC_API_KEY",
        key_setting="anthropic_api_key",
        base_url_setting="anthropic_base_url",
        # The Messages API of SDK 2.x has no sampling parameters.
        capabilities=Capabilities(prompt_cache=True, temperature=False, lists_capabilities=True),
    ),
    "openai_compatible": ProviderSpec(
        kind="openai_compatible",
        label="OpenAI-compatible server (Chat Completions)",
        adapter="llmtool.providers.openai_chat:OpenAIChatProvider",
        # Chat Completions has no event for "thinking began": a model hiding its thoughts is silent.
        capabilities=Capabilities(signals_thinking=False),
    ),
    "demo": ProviderSpec(
        kind="demo",
        label="offline demo",
        capabilities=Capabilities(lists_models=False, any_model=False),
    ),
}
# Provider names that are a kind of their own; every other name is a configured endpoint.
BUILTIN_PROVIDERS: dict[str, ProviderKind] = {"openai": "openai", "anthropic": "anthropic", "demo": "demo"}


def spec_for(kind: ProviderKind) -> ProviderSpec:
    return SPECS[kind]


def configured_keys(settings: Settings) -> list[str]:
    """Every key and base URL the settings hold, for the redactor."""
    found: list[str] = []
    for provider, kind in BUILTIN_PROVIDERS.items():
        spec = SPECS[kind]
        if spec.key_setting and spec.is_configured(settings, provider):
            found.append(spec.key(settings, provider) or "")
    return [key for key in found if key]


def configured_base_urls(settings: Settings) -> list[str | None]:
    return [SPECS[kind].base_url(settings, provider) for provider, kind in BUILTIN_PROVIDERS.items()]
