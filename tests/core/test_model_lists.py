"""Live model lists: whatever a provider answers, the pickers get a list and a reason."""

from __future__ import annotations

from types import SimpleNamespace

from llmtool.providers.anthropic import _listed
from llmtool.service import LLMService
from llmtool.settings import load_settings


class Unreadable:
    name = "anthropic"
    calls = 0

    async def list_models(self):
        self.calls += 1
        raise AttributeError("'str' object has no attribute 'data'")  # an HTML page where JSON was due

    async def aclose(self) -> None:
        return None


async def test_an_unreadable_list_falls_back_to_the_configured_models_and_is_not_asked_again_at_once() -> None:
    service = LLMService(load_settings(ANTHROPIC_API_KEY="k", model_list_ttl=600))
    adapter = Unreadable()
    service.providers._providers["anthropic"] = adapter
    listed = await service.model_lists.for_provider("anthropic")
    again = await service.model_lists.for_provider("anthropic")
    await service.aclose()
    assert not listed.live and "could not read" in (listed.problem or "")
    assert [m.id for m in listed.models] == [m.id for m in service.catalog.configured("anthropic")]
    assert again is listed and adapter.calls == 1


def test_a_list_entry_with_capabilities_left_out_reads_as_not_supported() -> None:
    partial = SimpleNamespace(id="claude-x", display_name="X", lifecycle="active", max_tokens=32000,
                              capabilities=SimpleNamespace(thinking=SimpleNamespace(supported=True)))
    model = _listed(partial)
    assert model is not None and model.thinking is None and model.efforts == () and model.max_output_tokens == 32000
    assert _listed(SimpleNamespace(id="claude-old", lifecycle="retired")) is None
