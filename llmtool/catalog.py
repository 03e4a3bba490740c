"""The model catalogue: which `PROVIDER:MODEL` names exist, which are usable, and what they cost.

Built-in prices live in `models.toml`; the config file adds or re-prices models (`[prices]`) and
declares OpenAI-compatible endpoints, whose models are free unless priced there.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from llmtool.errors import InvalidRequestError, MissingKeyError, UnknownModelError
from llmtool.providers.base import REASONING_EFFORTS, ReasoningEffort
from llmtool.providers.registry import BUILTIN_PROVIDERS, SPECS, ProviderKind
from llmtool.settings import Settings

DEMO_MODEL = "demo:assistant"
ThinkingMode = Literal["adaptive", "budget"]


class ModelInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    provider: str
    name: str
    kind: ProviderKind
    input_price: float | None = None
    cached_input_price: float | None = None
    cache_write_price: float | None = None
    output_price: float | None = None
    efforts: tuple[ReasoningEffort, ...] | None = None  # None: not known; (): not a reasoning model
    thinking: ThinkingMode | None = None  # Anthropic: how thinking is switched on
    effort_param: bool = False  # Anthropic: takes output_config.effort
    display_name: str | None = None
    max_output_tokens: int | None = None  # the most it may be asked for, when the provider says

    @property
    def id(self) -> str:
        return f"{self.provider}:{self.name}"

    @property
    def priced(self) -> bool:
        return self.input_price is not None and self.output_price is not None

    def cost(self, input_tokens: int | None, cached: int | None, output: int | None,
             cache_write: int | None = None) -> float | None:
        """Dollars for these token counts (input counts all input tokens, output counts reasoning);
        None when the model has no price: unknown, never $0."""
        if self.input_price is None or self.output_price is None:
            return None
        cached, cache_write = cached or 0, cache_write or 0
        cached_price = self.input_price if self.cached_input_price is None else self.cached_input_price
        write_price = self.input_price if self.cache_write_price is None else self.cache_write_price
        fresh = max((input_tokens or 0) - cached - cache_write, 0)
        return (
            fresh * self.input_price + cached * cached_price + cache_write * write_price
            + (output or 0) * self.output_price
        ) / 1_000_000

    def check_effort(self, effort: ReasoningEffort | None) -> None:
        """Refuse, before anything is sent, a reasoning effort this model is known not to accept."""
        if effort is None or self.efforts is None:
            return
        if not self.efforts:
            raise InvalidRequestError(
                f"{self.id} is not a reasoning model: leave the reasoning effort unset"
            )
        if effort not in self.efforts:
            raise InvalidRequestError(
                f"{self.id} does not accept reasoning effort {effort!r}; it accepts: {', '.join(self.efforts)}"
            )


class ListedModel(BaseModel):
    """A model as a provider's models endpoint lists it."""

    model_config = ConfigDict(frozen=True)

    name: str
    display_name: str | None = None
    efforts: tuple[ReasoningEffort, ...] | None = None
    thinking: ThinkingMode | None = None
    effort_param: bool = False
    max_output_tokens: int | None = None


def split_model_id(model_id: str) -> tuple[str, str]:
    """'ollama:llama3.2:3b' → ('ollama', 'llama3.2:3b'); a bare name is an error."""
    provider, sep, name = model_id.strip().partition(":")
    if not sep or not provider or not name:
        raise UnknownModelError(
            f"model {model_id!r} must be written PROVIDER:MODEL, e.g. openai:gpt-4.1-mini or demo:assistant"
        )
    return provider, name


@cache
def _builtin() -> dict[str, dict[str, dict[str, Any]]]:
    return tomllib.loads(resources.files("llmtool").joinpath("models.toml").read_text())


def _price(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "input_price": entry.get("input"),
        "cached_input_price": entry.get("cached_input"),
        "cache_write_price": entry.get("cache_write"),
        "output_price": entry.get("output"),
    }


def _capabilities(entry: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if "efforts" in entry:
        found["efforts"] = tuple(e for e in entry["efforts"] if e in REASONING_EFFORTS)
    for name in ("thinking", "effort_param"):
        if name in entry:
            found[name] = entry[name]
    if "max_output" in entry:
        found["max_output_tokens"] = entry["max_output"]
    return found


_FREE = {"input": 0.0, "cached_input": 0.0, "output": 0.0}
# A dated snapshot of a model: claude-opus-4-5-20251101, gpt-4.1-2025-04-14.
_DATED = re.compile(r"-(?:\d{8}|\d{4}-\d{2}-\d{2})$")


class Catalog:
    """All models llmtool knows, given the settings in force, plus any name a provider accepts.

    Known models come from `models.toml`, the endpoints' configured lists, `[prices]` and the
    providers' live lists (`learn`). Any other `PROVIDER:MODEL` of a configured provider resolves
    too: priced by a `[prices."PROVIDER:*"]` wildcard when there is one, else with cost unknown
    (an OpenAI-compatible endpoint's models are free unless priced)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._models: dict[str, ModelInfo] = {}
        self._wildcards: dict[str, dict[str, Any]] = {}
        for model_id, override in settings.prices.items():  # first: endpoint models use them
            provider, name = split_model_id(model_id)
            if name == "*":
                self.provider_kind(provider)
                self._wildcards[provider] = override.model_dump()
        for provider, models in _builtin().items():
            for name, entry in models.items():
                # A built-in model without efforts is known not to reason.
                fields = {**_price(entry), "efforts": (), **_capabilities(entry)}
                self._add(provider, name, BUILTIN_PROVIDERS[provider], fields)
        for endpoint, config in settings.endpoints.items():
            for name in config.models:
                self._add(endpoint, name, "openai_compatible", {})
        for model_id, override in settings.prices.items():
            provider, name = split_model_id(model_id)
            if name == "*":
                continue
            kind = self.provider_kind(provider)
            # A re-priced model keeps the prices the override does not name (cached, cache write).
            price = {k: v for k, v in _price(override.model_dump()).items() if v is not None}
            known = self._models.get(f"{provider}:{name}")
            self._add(provider, name, kind, {**(known.model_dump() if known else {}), **price})
        self._configured = set(self._models)  # what the settings and the table name, not lists

    def _add(self, provider: str, name: str, kind: ProviderKind, fields: dict[str, Any]) -> ModelInfo:
        fields = {k: v for k, v in fields.items() if k not in ("provider", "name", "kind")}
        if kind == "openai_compatible" and fields.get("input_price") is None:
            fields.update(_price(self._wildcards.get(provider, _FREE)))
        info = ModelInfo(provider=provider, name=name, kind=kind, **fields)
        self._models[info.id] = info
        return info

    def learn(self, provider: str, listed: Iterable[ListedModel]) -> list[ModelInfo]:
        """Add what a provider's live list says (names, capabilities) to what is known: its
        capabilities are the provider's own word and win; configured prices are kept. A dated
        snapshot (…-20251101) is priced like its alias, and teaches the alias its capabilities."""
        kind = self.provider_kind(provider)
        learned = []
        for model in listed:
            news = model.model_dump(exclude={"name"}, exclude_none=True)
            if not news.get("effort_param"):
                news.pop("effort_param", None)
            alias = self._models.get(f"{provider}:{_DATED.sub('', model.name)}")
            if alias is not None and alias.name != model.name:
                self._add(provider, alias.name, kind, {**alias.model_dump(), **news})
            known = self._models.get(f"{provider}:{model.name}") or alias
            fields = known.model_dump() if known else self._unknown_fields(provider, kind)
            learned.append(self._add(provider, model.name, kind, {**fields, **news}))
        return learned

    def configured(self, provider: str) -> list[ModelInfo]:
        """The provider's models as the settings and the built-in table name them (no live list)."""
        return [m for m in self._models.values() if m.provider == provider and m.id in self._configured]

    def _unknown_fields(self, provider: str, kind: ProviderKind) -> dict[str, Any]:
        if provider in self._wildcards:
            return _price(self._wildcards[provider])
        return _price(_FREE) if kind == "openai_compatible" else {}

    def provider_kind(self, provider: str) -> ProviderKind:
        if provider in BUILTIN_PROVIDERS:
            return BUILTIN_PROVIDERS[provider]
        if provider in self.settings.endpoints:
            return "openai_compatible"
        known = sorted({*BUILTIN_PROVIDERS, *self.settings.endpoints})
        raise UnknownModelError(f"unknown provider {provider!r}; known providers: {', '.join(known)}")

    def is_configured(self, provider: str) -> bool:
        try:
            kind = self.provider_kind(provider)
        except UnknownModelError:
            return False
        return SPECS[kind].is_configured(self.settings, provider)

    def providers(self) -> list[str]:
        """Configured providers, real ones first, the demo last."""
        names = [*BUILTIN_PROVIDERS, *self.settings.endpoints]
        return sorted((p for p in names if self.is_configured(p)), key=lambda p: p == "demo")

    def all(self) -> list[ModelInfo]:
        return list(self._models.values())

    def usable(self) -> list[ModelInfo]:
        """Models of configured providers, real providers first, the demo last."""
        models = [m for m in self._models.values() if self.is_configured(m.provider)]
        return sorted(models, key=lambda m: m.kind == "demo")

    def of_provider(self, provider: str) -> list[ModelInfo]:
        return [m for m in self._models.values() if m.provider == provider]

    def default_model(self) -> str:
        if self.settings.default_model:
            return self.resolve(self.settings.default_model).id
        return self.usable()[0].id

    def resolve(self, model_id: str) -> ModelInfo:
        """The model for a `PROVIDER:MODEL` name, or a clear UnknownModelError / MissingKeyError.
        Any model name of a known provider resolves: the provider says whether it exists."""
        provider, name = split_model_id(model_id)
        kind = self.provider_kind(provider)
        if name == "*":
            raise UnknownModelError(f"{model_id!r} names every model of {provider}: pick one")
        info = self._models.get(f"{provider}:{name}")
        if info is None:
            if not SPECS[kind].capabilities.any_model:
                known = sorted(m.name for m in self.of_provider(provider))
                raise UnknownModelError(f"unknown model {name!r} for provider {provider!r}; known: {', '.join(known)}")
            info = ModelInfo(provider=provider, name=name, kind=kind, **self._unknown_fields(provider, kind))
        if not self.is_configured(provider):
            variable = SPECS[kind].key_variable or "its key"
            raise MissingKeyError(
                f"{info.id} needs {variable}: set it in the environment or the "
                f"config file, or pick a demo model ({DEMO_MODEL} works offline)"
            )
        return info

    def price_hint(self, model: ModelInfo) -> str | None:
        """What to write in the config file to price a model whose cost is unknown."""
        if model.priced:
            return None
        return (
            f'the cost of {model.id} is unknown: add its price under [prices."{model.id}"] '
            f'(or [prices."{model.provider}:*"]) in the config file'
        )
