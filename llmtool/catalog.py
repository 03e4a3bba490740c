"""The model catalogue: which `PROVIDER:MODEL` names exist, which are usable, and what they cost.

Built-in prices live in `models.toml`; the config file adds or re-prices models (`[prices]`) and
declares OpenAI-compatible endpoints, whose models are free unless priced there.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict

from llmtool.errors import MissingKeyError, UnknownModelError
from llmtool.settings import Settings

ProviderKind = Literal["openai", "anthropic", "openai_compatible", "demo"]
BUILTIN_PROVIDERS: dict[str, ProviderKind] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "demo": "demo",
}
KEY_VARIABLES = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
DEMO_MODEL = "demo:assistant"


class ModelInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    provider: str
    name: str
    kind: ProviderKind
    input_price: float | None = None
    cached_input_price: float | None = None
    output_price: float | None = None

    @property
    def id(self) -> str:
        return f"{self.provider}:{self.name}"

    def cost(self, input_tokens: int | None, cached: int | None, output: int | None) -> float | None:
        """Dollars for these token counts; None when the model has no price."""
        if self.input_price is None or self.output_price is None:
            return None
        cached = cached or 0
        cached_price = self.input_price if self.cached_input_price is None else self.cached_input_price
        fresh = max((input_tokens or 0) - cached, 0)
        return (
            fresh * self.input_price + cached * cached_price + (output or 0) * self.output_price
        ) / 1_000_000


def split_model_id(model_id: str) -> tuple[str, str]:
    """'ollama:llama3.2:3b' → ('ollama', 'llama3.2:3b'); a bare name is an error."""
    provider, sep, name = model_id.strip().partition(":")
    if not sep or not provider or not name:
        raise UnknownModelError(
            f"model {model_id!r} must be written PROVIDER:MODEL, e.g. openai:gpt-4.1-mini or demo:assistant"
        )
    return provider, name


@cache
def _builtin() -> dict[str, dict[str, dict[str, float]]]:
    return tomllib.loads(resources.files("llmtool").joinpath("models.toml").read_text())


class Catalog:
    """All models llmtool knows, given the settings in force."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._models: dict[str, ModelInfo] = {}
        for provider, models in _builtin().items():
            for name, price in models.items():
                self._add(provider, name, BUILTIN_PROVIDERS[provider], price)
        for endpoint, config in settings.endpoints.items():
            for name in config.models:
                self._add(endpoint, name, "openai_compatible", {})
        for model_id, override in settings.prices.items():
            provider, name = split_model_id(model_id)
            kind = self.provider_kind(provider)
            self._add(provider, name, kind, override.model_dump())

    def _add(self, provider: str, name: str, kind: ProviderKind, price: dict) -> None:
        if kind == "openai_compatible" and not price:
            price = {"input": 0.0, "cached_input": 0.0, "output": 0.0}
        info = ModelInfo(
            provider=provider,
            name=name,
            kind=kind,
            input_price=price.get("input"),
            cached_input_price=price.get("cached_input"),
            output_price=price.get("output"),
        )
        self._models[info.id] = info

    def provider_kind(self, provider: str) -> ProviderKind:
        if provider in BUILTIN_PROVIDERS:
            return BUILTIN_PROVIDERS[provider]
        if provider in self.settings.endpoints:
            return "openai_compatible"
        known = sorted({*BUILTIN_PROVIDERS, *self.settings.endpoints})
        raise UnknownModelError(f"unknown provider {provider!r}; known providers: {', '.join(known)}")

    def is_configured(self, provider: str) -> bool:
        if provider == "openai":
            return self.settings.openai_api_key is not None
        if provider == "anthropic":
            return self.settings.anthropic_api_key is not None
        return provider == "demo" or provider in self.settings.endpoints

    def all(self) -> list[ModelInfo]:
        return list(self._models.values())

    def usable(self) -> list[ModelInfo]:
        """Models of configured providers, real providers first, the demo last."""
        models = [m for m in self._models.values() if self.is_configured(m.provider)]
        return sorted(models, key=lambda m: m.kind == "demo")

    def default_model(self) -> str:
        if self.settings.default_model:
            return self.resolve(self.settings.default_model).id
        return self.usable()[0].id

    def resolve(self, model_id: str) -> ModelInfo:
        """The model for a `PROVIDER:MODEL` name, or a clear UnknownModelError / MissingKeyError."""
        provider, name = split_model_id(model_id)
        kind = self.provider_kind(provider)
        info = self._models.get(f"{provider}:{name}")
        if info is None:
            endpoint = self.settings.endpoints.get(provider)
            if endpoint is not None and not endpoint.models:
                info = ModelInfo(provider=provider, name=name, kind=kind,
                                 input_price=0.0, cached_input_price=0.0, output_price=0.0)
            else:
                known = sorted(m.name for m in self._models.values() if m.provider == provider)
                raise UnknownModelError(
                    f"unknown model {name!r} for provider {provider!r}; known: {', '.join(known)}. "
                    f"Add others under [prices.\"{provider}:MODEL\"] in the config file."
                )
        if not self.is_configured(provider):
            raise MissingKeyError(
                f"{info.id} needs {KEY_VARIABLES[provider]}: set it in the environment or the "
                f"config file, or pick a demo model ({DEMO_MODEL} works offline)"
            )
        return info
