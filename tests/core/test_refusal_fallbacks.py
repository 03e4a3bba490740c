"""A provider refusing an optional part of a request (strict schema mode, any native schema,
reasoning summaries) gets the request again at once without it, once; later runs remember."""

from __future__ import annotations

from llmtool.errors import RequestRejectedError
from llmtool.providers.base import FinishChunk, TextChunk
from llmtool.service import LLMService
from llmtool.settings import load_settings

SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
          "additionalProperties": False}


class Refusing:
    """Refuses requests matching `refuse(request)` with `message`, answers the others."""

    name = "demo"

    def __init__(self, refuse, message: str) -> None:
        self.refuse, self.message, self.requests = refuse, message, []

    async def stream(self, request):
        self.requests.append(request)
        if self.refuse(request):
            raise RequestRejectedError(f"demo rejected the request (HTTP 400): {self.message}", status=400)
        yield TextChunk('{"ok": true}')
        yield FinishChunk("stop")

    async def aclose(self) -> None:
        return None


def service_with(provider: Refusing) -> LLMService:
    service = LLMService(load_settings())
    service.providers._providers["demo"] = provider
    return service


async def test_a_refused_strict_mode_is_dropped_before_the_schema_is() -> None:
    provider = Refusing(lambda r: r.strict_schema, "Invalid schema for response_format: strict mode needs ...")
    service = service_with(provider)
    events = [e async for e in service.start({"model": "demo:echo", "prompt": "x",
                                              "validation": {"json_schema": SCHEMA}}).events()]
    await service.aclose()
    assert events[-1].kind == "completed" and not any(e.kind == "notice" for e in events)
    assert [(r.native_schema, r.strict_schema) for r in provider.requests] == [(True, True), (True, False)]


async def test_a_model_that_refuses_schemas_is_asked_by_instruction_and_remembered() -> None:
    provider = Refusing(lambda r: r.native_schema, "response_format json_schema is not supported by this server")
    service = service_with(provider)
    request = {"model": "demo:echo", "prompt": "x", "validation": {"json_schema": SCHEMA}}
    first = [e async for e in service.start(request).events()]
    second = [e async for e in service.start(request).events()]
    await service.aclose()
    assert [e.kind for e in first].count("notice") == 1 and first[-1].kind == "completed"
    assert "demo:echo cannot be asked for structured output" in next(e.message for e in first if e.kind == "notice")
    assert not any(e.kind == "notice" for e in second) and second[-1].kind == "completed"
    assert [r.native_schema for r in provider.requests] == [True, False, False]  # the second run: at once
    assert '"required":["ok"]' in (provider.requests[-1].system or "")


async def test_reasoning_summaries_refused_to_an_unverified_organization_are_dropped() -> None:
    provider = Refusing(lambda r: r.reasoning_summary,
                        "Your organization must be verified to generate reasoning summaries (param: reasoning.summary)")
    service = service_with(provider)
    request = {"model": "demo:thinker", "prompt": "x", "reasoning_effort": "low"}
    first = [e async for e in service.start(request).events()]
    second = await service.start(request).wait()
    await service.aclose()
    notice = next(e for e in first if e.kind == "notice")
    assert "does not give reasoning summaries here" in notice.message and first[-1].kind == "completed"
    assert second.kind == "completed"
    assert [r.reasoning_summary for r in provider.requests] == [True, False, False]


async def test_an_unrelated_refusal_is_not_mistaken_for_a_schema_one() -> None:
    provider = Refusing(lambda r: True, "output_config.effort: 'max' is not supported on this model")
    service = service_with(provider)
    failed = await service.start({"model": "demo:echo", "prompt": "x", "validation": {"json_schema": SCHEMA}}).wait()
    await service.aclose()
    assert failed.kind == "failed" and failed.error_kind == "request_rejected"
    assert len(provider.requests) == 1
