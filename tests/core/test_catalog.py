import pytest

from llmtool.catalog import Catalog
from llmtool.errors import MissingKeyError, UnknownModelError
from llmtool.settings import load_settings


def test_demo_is_the_only_usable_provider_without_keys():
    catalog = Catalog(load_settings())
    assert {m.provider for m in catalog.usable()} == {"demo"}
    assert catalog.default_model() == "demo:assistant"


def test_keys_make_providers_usable_and_real_models_come_first():
    catalog = Catalog(load_settings(OPENAI_API_KEY="k", ANTHROPIC_API_KEY="k"))
    ids = [m.id for m in catalog.usable()]
    assert "openai:gpt-4.1-mini" in ids and "anthropic:claude-sonnet-4-5" in ids
    assert ids[-1].startswith("demo:")
    assert catalog.default_model().split(":")[0] in {"openai", "anthropic"}


@pytest.mark.parametrize(
    ("model_id", "error", "words"),
    [
        ("gpt-4.1", UnknownModelError, "PROVIDER:MODEL"),
        ("mystery:model", UnknownModelError, "unknown provider 'mystery'"),
        ("demo:nonexistent", UnknownModelError, "known: assistant, echo"),
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


def test_listed_endpoint_models_are_the_only_ones_accepted():
    settings = load_settings(endpoints={"vllm": {"base_url": "http://h/v1", "models": ["qwen"]}})
    with pytest.raises(UnknownModelError, match="known: qwen"):
        Catalog(settings).resolve("vllm:other")


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
