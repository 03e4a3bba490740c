"""GET /v1/models in both shapes, the model_not_found preset and structured-output requests."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import openai
import pytest

from llmtool.loopback import DEFAULT_TEXT, LoopbackServer, ModelSpec, Scenario, structured_output

from .helpers import MESSAGES, collect, open_stream

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}
RESPONSES_FORMAT = {"type": "json_schema", "name": "answer", "schema": SCHEMA, "strict": True}
CHAT_SCHEMA = {"name": "answer", "schema": SCHEMA, "strict": True}
MESSAGES_FORMAT: Any = {"type": "json_schema", "schema": SCHEMA}
CHAT: Any = MESSAGES


# -- models listing ----------------------------------------------------------------------------


async def test_openai_models_list(server: LoopbackServer, oai: openai.AsyncOpenAI) -> None:
    page = await oai.models.list()
    assert [m.id for m in page.data] == ["gpt-5.1", "gpt-4.1-mini"]  # only OpenAI's models
    assert page.data[0].object == "model" and page.data[0].owned_by == "system" and page.data[0].created > 0
    record = server.wait_closed(0)
    assert (record.method, record.path, record.protocol, record.status) == ("GET", "/v1/models", "models", 200)
    assert record.scenario_kind == "normal" and record.structured_output is None


async def test_anthropic_models_list_parses_capabilities(server: LoopbackServer, ant: anthropic.AsyncAnthropic) -> None:
    page = await ant.models.list()
    assert [m.id for m in page.data] == ["claude-opus-4-5", "claude-sonnet-4-5", "claude-opus-4-7"]
    assert (page.has_more, page.first_id, page.last_id) == (False, "claude-opus-4-5", "claude-opus-4-7")
    opus45, sonnet, opus47 = page.data
    assert opus45.display_name == "Claude Opus 4.5" and opus45.lifecycle == "active" and opus45.type == "model"
    assert opus45.created_at.year == 2025 and opus45.max_input_tokens and opus45.max_tokens
    caps = opus45.capabilities
    assert caps is not None
    assert caps.effort.supported and caps.effort.high.supported and not caps.effort.max.supported
    assert caps.thinking.supported and caps.thinking.types.enabled.supported
    assert not caps.thinking.types.adaptive.supported and caps.structured_outputs.supported
    assert sonnet.capabilities is not None and not sonnet.capabilities.effort.supported
    assert sonnet.capabilities.thinking.types.enabled.supported
    caps47 = opus47.capabilities
    assert caps47 is not None and caps47.effort.max.supported
    assert caps47.effort.xhigh is not None and caps47.effort.xhigh.supported
    assert caps47.thinking.types.adaptive.supported and not caps47.thinking.types.enabled.supported
    record = server.wait_closed(0)
    assert record.protocol == "models" and "anthropic-version" in record.headers and record.status == 200


async def test_anthropic_pagination(server: LoopbackServer, ant: anthropic.AsyncAnthropic) -> None:
    ids = [m.id async for m in ant.models.list(limit=2)]
    assert ids == ["claude-opus-4-5", "claude-sonnet-4-5", "claude-opus-4-7"]
    assert [r.target for r in server.requests] == [
        "/v1/models?limit=2",
        "/v1/models?limit=2&after_id=claude-sonnet-4-5",
    ]
    before = await ant.models.list(before_id="claude-opus-4-7", limit=1)
    assert [m.id for m in before.data] == ["claude-sonnet-4-5"] and before.has_more


async def test_retrieve_one_model(oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic) -> None:
    assert (await oai.models.retrieve("gpt-4.1-mini")).id == "gpt-4.1-mini"
    info = await ant.models.retrieve("claude-sonnet-4-5")
    assert info.display_name == "Claude Sonnet 4.5" and info.capabilities is not None
    with pytest.raises(openai.NotFoundError) as oai_missing:
        await oai.models.retrieve("claude-sonnet-4-5")  # not an OpenAI model
    assert oai_missing.value.code == "model_not_found"
    with pytest.raises(anthropic.NotFoundError, match=r"model: gpt-5\.1"):
        await ant.models.retrieve("gpt-5.1")


async def test_models_configured_by_constructor_setter_and_control_route() -> None:
    specs: list[ModelSpec | str] = [
        ModelSpec(id="claude-haiku-9", efforts=["low"], thinking=["enabled", "adaptive"], structured_outputs=False),
        "qwen3:8b",
    ]
    with LoopbackServer(models=specs) as server:
        oai = openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="t", max_retries=0)
        ant = anthropic.AsyncAnthropic(base_url=server.anthropic_base_url, api_key="t", max_retries=0)
        assert [m.id for m in (await oai.models.list()).data] == ["qwen3:8b"]
        (haiku,) = (await ant.models.list()).data
        assert haiku.capabilities is not None and haiku.line == "haiku"
        assert haiku.capabilities.thinking.types.adaptive.supported and not haiku.capabilities.structured_outputs.supported
        assert haiku.capabilities.effort.low.supported and not haiku.capabilities.effort.medium.supported

        server.models = ["gpt-a", ModelSpec(id="local", provider="anthropic")]
        assert [m.id for m in (await oai.models.list()).data] == ["gpt-a"]
        assert [m.id for m in (await ant.models.list()).data] == ["local"]

        async with httpx2.AsyncClient(base_url=server.url) as http:
            posted = await http.post("/_loopback/models", json=["gpt-b", {"id": "claude-x", "efforts": ["max"]}])
            assert posted.status_code == 200 and [m["id"] for m in posted.json()] == ["gpt-b", "claude-x"]
            assert (await http.post("/_loopback/models", json=[{"id": "x", "efforts": ["huge"]}])).status_code == 400
            assert [m["id"] for m in (await http.get("/_loopback/models")).json()] == ["gpt-b", "claude-x"]
        assert [m.id for m in (await oai.models.list()).data] == ["gpt-b"]
        (claude_x,) = (await ant.models.list()).data
        assert claude_x.capabilities is not None and claude_x.capabilities.effort.max.supported
        await oai.close()
        await ant.close()


async def test_listing_under_error_preset_raises(server: LoopbackServer) -> None:
    oai = openai.AsyncOpenAI(base_url=f"{server.preset_url('server_error')}/v1", api_key="t", max_retries=0)
    ant = anthropic.AsyncAnthropic(base_url=server.preset_url("overloaded"), api_key="t", max_retries=0)
    with pytest.raises(openai.InternalServerError):
        await oai.models.list()
    with pytest.raises(anthropic.OverloadedError) as caught:
        await ant.models.list()
    assert caught.value.type == "overloaded_error" and caught.value.request_id  # Anthropic's body shape
    await oai.close()
    await ant.close()
    first, second = server.requests
    assert (first.path, first.preset, first.status, first.protocol) == ("/v1/models", "server_error", 500, "models")
    assert (second.target, second.status) == ("/scenario/overloaded/v1/models", 529)


async def test_listing_takes_its_own_queued_scenario_and_leaves_the_answers_queue_alone(
    server: LoopbackServer, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    server.enqueue("server_error")  # for an answer: a listing does not take it
    server.enqueue_models("unauthorized", "thinking", "rate_limit")
    with pytest.raises(openai.AuthenticationError):
        await oai.models.list()
    assert len((await ant.models.list()).data) == 3  # a streaming scenario answers the list
    with pytest.raises(anthropic.RateLimitError):
        await ant.models.list()
    assert [r.scenario_kind for r in server.requests] == ["http_error", "normal", "http_error"]
    assert len((await oai.models.list()).data) > 0  # nothing queued for listings: the list
    assert server._log.queued() == 1  # the answer's scenario is still there


def test_models_route_wants_get(server: LoopbackServer) -> None:
    with httpx2.Client(base_url=server.url) as http:
        refused = http.post("/v1/models", json={})
        assert refused.status_code == 405 and "use GET" in refused.json()["error"]["message"]
        assert http.get("/v1/models", headers={"anthropic-version": "2023-06-01"}).json()["has_more"] is False
    assert [r.status for r in server.wait_for_requests(2)] == [405, 200]


# -- model_not_found -----------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["responses", "chat"])
async def test_model_not_found_openai(protocol: str, server: LoopbackServer, oai: openai.AsyncOpenAI) -> None:
    server.enqueue("model_not_found")
    with pytest.raises(openai.NotFoundError) as caught:
        await open_stream(protocol, oai, None, model="gpt-nope")  # type: ignore[arg-type]
    err = caught.value
    assert err.status_code == 404 and err.code == "model_not_found" and err.type == "invalid_request_error"
    message = "The model `gpt-nope` does not exist or you do not have access to it."
    assert err.message == f"Error code: 404 - {message}"  # the SDK prefixes the status
    assert err.body == {
        "message": message,
        "type": "invalid_request_error",
        "param": None,
        "code": "model_not_found",
    }
    record = server.wait_closed(0)
    assert (record.status, record.scenario_kind) == (404, "model_not_found")


async def test_model_not_found_anthropic(server: LoopbackServer) -> None:
    ant = anthropic.AsyncAnthropic(base_url=server.preset_url("model_not_found"), api_key="t", max_retries=0)
    with pytest.raises(anthropic.NotFoundError) as caught:
        await ant.messages.create(model="claude-nope", max_tokens=10, messages=CHAT)
    await ant.close()
    err = caught.value
    assert err.type == "not_found_error" and err.request_id is not None
    assert err.body == {
        "type": "error",
        "error": {"type": "not_found_error", "message": "model: claude-nope"},
        "request_id": err.request_id,
    }
    assert "model: claude-nope" in str(err)


# -- structured output -------------------------------------------------------------------------


async def test_structured_output_is_read_from_each_protocols_field(
    server: LoopbackServer, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    # Plain dicts, as an app builds them: the SDKs' TypedDicts are not the point here.
    json_schema: Any = {"type": "json_schema", "json_schema": CHAT_SCHEMA}
    json_object: Any = {"type": "json_object"}
    text: Any = {"format": RESPONSES_FORMAT}
    await oai.responses.create(model="m", input="x", text=text)
    await oai.chat.completions.create(model="m", messages=CHAT, response_format=json_schema)
    await ant.messages.create(model="m", max_tokens=10, messages=CHAT, output_config={"format": MESSAGES_FORMAT})
    await oai.chat.completions.create(model="m", messages=CHAT, response_format=json_object)
    await oai.responses.create(model="m", input="x")
    records = server.wait_for_requests(5)
    assert [structured_output(r) for r in records] == [RESPONSES_FORMAT, CHAT_SCHEMA, MESSAGES_FORMAT, None, None]
    assert records[1].structured_output == CHAT_SCHEMA
    with httpx2.Client(base_url=server.url) as http:  # also in the control API's JSON
        assert http.get("/_loopback/requests").json()[2]["structured_output"] == MESSAGES_FORMAT


async def test_responses_echoes_the_text_format(oai: openai.AsyncOpenAI) -> None:
    text: Any = {"format": RESPONSES_FORMAT}
    response = await oai.responses.create(model="m", input="x", text=text)
    assert response.text is not None and response.text.format is not None
    assert response.text.format.type == "json_schema"


@pytest.mark.parametrize(
    ("protocol", "field", "kw"),
    [
        ("responses", "text.format", {"text": {"format": RESPONSES_FORMAT}}),
        ("chat", "response_format", {"response_format": {"type": "json_schema", "json_schema": CHAT_SCHEMA}}),
        ("messages", "output_config.format", {"output_config": {"format": MESSAGES_FORMAT}}),
    ],
)
async def test_reject_structured_output(
    protocol: str,
    field: str,
    kw: dict,
    server: LoopbackServer,
    oai: openai.AsyncOpenAI,
    ant: anthropic.AsyncAnthropic,
) -> None:
    server.default = Scenario(reject_structured_output=True)
    error = anthropic.BadRequestError if protocol == "messages" else openai.BadRequestError
    with pytest.raises(error) as caught:
        await open_stream(protocol, oai, ant, **kw)
    err: Any = caught.value
    assert err.status_code == 400 and f"{field} json_schema is not supported by this server" in str(err)
    if protocol == "messages":
        assert err.type == "invalid_request_error"
    else:
        assert err.type == "invalid_request_error" and err.param == field
    # The same scenario answers a request without structured output normally.
    got = await collect(protocol, await open_stream(protocol, oai, ant))
    assert got.error is None and got.text == DEFAULT_TEXT
    assert [r.status for r in server.requests] == [400, 200]
    assert server.requests[0].structured_output is not None
