import pytest

from llmtool.catalog import Catalog, ListedModel
from llmtool.errors import InvalidRequestError, MissingKeyError, UnknownModelError
from llmtool.settings import load_settings


def test_demo_is_the_only_usable_provider_without_keys():
    catalog = Catalog(load_settings())
    assert {m.provider for m in catalog.usable()} == {"demo"}
    assert catalog.default_model() == "demo:assistant"


def test_keys_make_providers_usable_and_real_models_come_first():
    catalog = Catalog(load_settings(OPENAI_API_KEY="k", ANTHROPIC_API_KEY="k"))
    ids = [m.id for m in catalog.usable()]
    assert "openai:gpt-4.1-mini" in ids and "anthropic:claude-haiku-4-5" in ids
    assert ids[-1].startswith("demo:")
    assert catalog.default_model().split(":")[0] in {"openai", "anthropic"}


@pytest.mark.parametrize(
    ("model_id", "error", "words"),
    [
        ("gpt-4.1", UnknownModelError, "PROVIDER:MODEL"),
        ("mystery:model", UnknownModelError, "unknown provider 'mystery'"),
        ("demo:nonexistent", UnknownModelError, "known: assistant, echo, grader, thinker"),
        ("openai:gpt-4.1-mini", MissingKeyError, "OPENAI_API_KEY"),
        ("anthropic:claude-haiku-4-5", MissingKeyError, "ANTHROPIC_API_KEY"),
    ],
)
def test_bad_model_names_get_clear_errors(model_id, error, words):
    with pytest.raises(error) as caught:
        Catalog(load_settings()).resolve(model_id)
    assert words in caught.value.message


def test_endpoint_models_and_names_with_colons():
    settings = load_settings(endpoints={"ollama": {"base_url": "http://127.0.0.1:1/v1/"}})
    catalog = Catalog(settings)
    info = catalog.resolve("ollama:llama3.2:3b")
    assert (info.provider, info.name, info.kind) == ("ollama", "llama3.2:3b", "openai_compatible")
    assert info.cost(1000, 0, 1000) == 0.0
    assert settings.endpoints["ollama"].base_url == "http://127.0.0.1:1/v1"


def test_any_model_name_of_a_configured_provider_resolves_with_its_cost_unknown():
    catalog = Catalog(load_settings(OPENAI_API_KEY="k", ANTHROPIC_API_KEY="k"))
    for model_id in ("openai:gpt-7-turbo-preview", "anthropic:claude-future-9"):
        info = catalog.resolve(model_id)
        assert info.id == model_id
        assert not info.priced
        assert info.cost(1000, 0, 1000) is None  # unknown, never $0
        assert info.efforts is None  # unknown: the provider decides
        assert model_id in (catalog.price_hint(info) or "")
    assert catalog.price_hint(catalog.resolve("openai:gpt-4.1")) is None


def test_an_endpoint_takes_models_it_does_not_list_and_they_are_free():
    settings = load_settings(endpoints={"vllm": {"base_url": "http://h/v1", "models": ["qwen"]}})
    info = Catalog(settings).resolve("vllm:other")
    assert info.kind == "openai_compatible" and info.cost(1000, 0, 1000) == 0.0


def test_a_provider_wildcard_prices_its_other_models_but_not_the_listed_ones():
    settings = load_settings(OPENAI_API_KEY="k", prices={"openai:*": {"input": 1, "output": 2}})
    catalog = Catalog(settings)
    assert catalog.resolve("openai:gpt-new").cost(1_000_000, None, 1_000_000) == pytest.approx(3.0)
    assert catalog.resolve("openai:gpt-4.1-mini").cost(1_000_000, None, 0) == pytest.approx(0.40)
    with pytest.raises(UnknownModelError, match="pick one"):
        catalog.resolve("openai:*")


def test_cache_writes_are_priced_apart_from_reads_and_fresh_input():
    info = Catalog(load_settings(ANTHROPIC_API_KEY="k")).resolve("anthropic:claude-opus-4-5")
    # 1M input: 200k read from the cache, 300k written to it, 500k fresh; no output.
    expected = 0.5 * 5.00 + 0.2 * 0.50 + 0.3 * 6.25
    assert info.cost(1_000_000, 200_000, 0, cache_write=300_000) == pytest.approx(expected)


def test_reasoning_efforts_a_model_does_not_take_are_refused_with_what_it_takes():
    catalog = Catalog(load_settings(OPENAI_API_KEY="k"))
    with pytest.raises(InvalidRequestError, match=r"does not accept reasoning effort 'xhigh'.*minimal, low"):
        catalog.resolve("openai:gpt-5").check_effort("xhigh")
    with pytest.raises(InvalidRequestError, match="not a reasoning model"):
        catalog.resolve("openai:gpt-4.1").check_effort("low")
    catalog.resolve("openai:gpt-5").check_effort("minimal")
    catalog.resolve("openai:gpt-unknown").check_effort("max")  # unknown model: the provider decides


def test_a_live_list_teaches_capabilities_and_keeps_configured_prices():
    catalog = Catalog(load_settings(ANTHROPIC_API_KEY="k"))
    learned = catalog.learn("anthropic", [
        ListedModel(name="claude-opus-4-5", efforts=("none", "low", "medium", "high", "max"),
                    thinking="adaptive", effort_param=True),
        ListedModel(name="claude-new", efforts=("none", "low"), thinking="budget"),
    ])
    assert [m.id for m in learned] == ["anthropic:claude-opus-4-5", "anthropic:claude-new"]
    opus = catalog.resolve("anthropic:claude-opus-4-5")
    assert opus.input_price == 5.00 and opus.thinking == "adaptive"
    assert opus.efforts == ("none", "low", "medium", "high", "max")  # the provider's word wins
    new = catalog.resolve("anthropic:claude-new")
    assert new.efforts == ("none", "low") and not new.priced


def test_cost_uses_cached_price_for_cached_tokens():
    info = Catalog(load_settings(OPENAI_API_KEY="k")).resolve("openai:gpt-4.1-mini")
    # 1M input of which 400k cached, 1M output: 0.6*0.40 + 0.4*0.10 + 1*1.60
    assert info.cost(1_000_000, 400_000, 1_000_000) == pytest.approx(0.24 + 0.04 + 1.60)


def test_config_prices_add_and_reprice_models():
    settings = load_settings(
        OPENAI_API_KEY="k", prices={"openai:gpt-9": {"input": 1, "output": 2}}
    )
    info = Catalog(settings).resolve("openai:gpt-9")
    assert info.cost(1_000_000, None, 1_000_000) == pytest.approx(3.0)


def test_an_endpoint_wildcard_prices_its_configured_models_too():
    settings = load_settings(endpoints={"ollama": {"base_url": "http://h/v1", "models": ["llama3"]}},
                             prices={"ollama:*": {"input": 1, "output": 2}})
    catalog = Catalog(settings)
    for name in ("llama3", "qwen3"):
        assert catalog.resolve(f"ollama:{name}").cost(1_000_000, None, 1_000_000) == pytest.approx(3.0)


def test_re_pricing_a_model_keeps_the_prices_the_override_does_not_name():
    settings = load_settings(OPENAI_API_KEY="k", prices={"openai:gpt-4.1-mini": {"input": 0.5, "output": 2}})
    info = Catalog(settings).resolve("openai:gpt-4.1-mini")
    assert (info.input_price, info.cached_input_price, info.output_price) == (0.5, 0.10, 2)


def test_a_dated_snapshot_is_priced_like_its_alias_and_teaches_it_capabilities():
    catalog = Catalog(load_settings(ANTHROPIC_API_KEY="k"))
    catalog.learn("anthropic", [ListedModel(name="claude-opus-4-5-20251101", efforts=("none", "low", "max"),
                                            thinking="adaptive", effort_param=True, max_output_tokens=64000)])
    dated, alias = catalog.resolve("anthropic:claude-opus-4-5-20251101"), catalog.resolve("anthropic:claude-opus-4-5")
    assert dated.input_price == alias.input_price == 5.00
    assert alias.thinking == "adaptive" and alias.efforts == ("none", "low", "max")
    assert [m.id for m in catalog.configured("anthropic")].count("anthropic:claude-opus-4-5-20251101") == 0
