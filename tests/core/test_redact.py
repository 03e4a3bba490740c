"""Secrets never reach the page: known keys and credentials in URLs are masked."""

from __future__ import annotations

import pytest

from llmtool.errors import InvalidRequestError
from llmtool.redact import MASK, Redactor, url_secrets
from llmtool.settings import load_settings


def test_masks_every_configured_secret(monkeypatch) -> None:
    monkeypatch.setenv("LOCAL_KEY", "env-key-5678")
    settings = load_settings(
        openai_api_key="sk-test-openai-1234",
        anthropic_api_key="sk-ant-test-9999",
        openai_base_url="https://proxy.example/v1?api-key=query-secret-1",
        endpoints={
            "local": {"base_url": "http://10.0.0.2:8000/v1", "api_key": "endpoint-key-42"},
            "other": {"base_url": "http://10.0.0.3/v1", "api_key_env": "LOCAL_KEY"},
        },
    )
    redact = Redactor.from_settings(settings)
    text = ("keys sk-test-openai-1234 sk-ant-test-9999 endpoint-key-42 env-key-5678; "
            "url https://proxy.example/v1?api-key=query-secret-1")
    shown = redact(text)
    for secret in ("sk-test-openai-1234", "sk-ant-test-9999", "endpoint-key-42", "env-key-5678", "query-secret-1"):
        assert secret not in shown
    assert shown.count(MASK) == 5


def test_encoded_forms_of_a_secret_are_masked_too() -> None:
    redact = Redactor(["bob:hunter22/x"])
    for form in ("bob:hunter22/x", "bob%3Ahunter22%2Fx", "Ym9iOmh1bnRlcjIyL3g=", "Ym9iOmh1bnRlcjIyL3g"):
        assert redact(f"Authorization: Basic {form}!") == f"Authorization: Basic {MASK}!", form


@pytest.mark.parametrize("base_url", ["http://bob:hunter22@10.0.0.2:8000/v1", "https://token123@proxy/v1"])
def test_credentials_in_a_base_url_are_refused_with_a_sentence(base_url: str) -> None:
    with pytest.raises(InvalidRequestError, match="user name or password in it"):
        load_settings(openai_base_url=base_url)
    with pytest.raises(InvalidRequestError, match="user name or password in it"):
        load_settings(endpoints={"local": {"base_url": base_url}})


KEY = "sk-live-0123456789abcdefghij"


@pytest.mark.parametrize("size", [1, 2, 3, 5, 28])
def test_a_key_echoed_in_pieces_never_shows_a_fragment(size: int) -> None:
    text = f"Your key is {KEY}, and again s{KEY}s. Done: sk-liv"
    masker = Redactor([KEY]).stream()
    released = []
    for i in range(0, len(text), size):
        piece = masker.feed(text[i:i + size])
        released.append(piece)
        assert KEY[:6] not in "".join(released)  # not even a fragment of it, at any moment
    released.append(masker.flush())
    assert "".join(released) == f"Your key is {MASK}, and again s{MASK}s. Done: sk-liv"


def test_ordinary_text_is_released_at_once() -> None:
    masker = Redactor([KEY]).stream()
    assert masker.feed("Hello there, ") == "Hello there, "
    assert masker.feed("this is fine") == "this is fine"
    assert masker.feed(" s") == " "  # could begin the key: held until it cannot
    assert masker.feed("o") == "so"


def test_leaves_ordinary_text_alone() -> None:
    redact = Redactor(["sk-live-abcdef", "ab"])  # too-short secrets would mask ordinary words
    assert redact("a table about tabs") == "a table about tabs"
    assert redact("use sk-live-abcdef") == f"use {MASK}"


def test_url_secrets() -> None:
    assert url_secrets(None) == []
    assert url_secrets("http://localhost:11434/v1") == []
    assert url_secrets("http://u:p4ss@h/v1") == ["p4ss", "u:p4ss"]
    assert url_secrets("http://token123@h/v1") == ["token123"]
    assert url_secrets("http://h/v1?key=abc&x=y") == ["abc", "y"]


def test_paths_in_the_prompts_directory_are_shown_relative_to_it(tmp_path) -> None:
    prompts = tmp_path / "prompts"
    redact = Redactor.from_settings(load_settings(prompts_dir=prompts))
    assert redact(f"⚠ {prompts / 'classify.md'}:35: unknown variable") == "⚠ classify.md:35: unknown variable"
    assert redact(f"unknown template 'x' in {prompts}/ (available: a)") == "unknown template 'x' in prompts/ (available: a)"
    assert str(tmp_path) not in redact(f"{prompts.resolve() / 'sub' / 'a.md'}:1: x")
    # Only that directory, only as a whole path: other paths and ordinary text stay as they are.
    assert redact(f"{tmp_path}/promptsx/a.md and prompts/a.md") == f"{tmp_path}/promptsx/a.md and prompts/a.md"


class _EchoInPieces:
    """A provider that echoes a key three characters at a time, thinking aloud about it first."""

    name = "demo"

    async def stream(self, request):
        from llmtool.providers.base import FinishChunk, ReasoningChunk, TextChunk

        for i in range(0, len(KEY), 3):
            yield ReasoningChunk(KEY[i:i + 3])
        text = f"The key: {KEY}. Bye"
        for i in range(0, len(text), 3):
            yield TextChunk(text[i:i + 3])
        yield FinishChunk("stop")

    async def aclose(self) -> None:
        return None


async def test_no_event_of_a_run_carries_a_fragment_of_a_key_echoed_in_pieces() -> None:
    from llmtool.service import LLMService

    service = LLMService(load_settings(openai_api_key=KEY))
    service.providers._providers["demo"] = _EchoInPieces()
    run = service.start({"model": "demo:echo", "prompt": "echo my key"})
    events = [event async for event in run.events()]
    await service.aclose()
    streamed = "".join(e.text for e in events if e.kind == "text")
    thought = "".join(e.text for e in events if e.kind == "reasoning")
    assert streamed == f"The key: {MASK}. Bye" and thought == MASK
    assert all(KEY[:4] not in event.model_dump_json() for event in events)
    assert events[-1].kind == "completed" and events[-1].text == streamed


class _ThinksThenAnswers:
    name = "demo"

    async def stream(self, request):
        from llmtool.providers.base import FinishChunk, ReasoningChunk, TextChunk

        yield ReasoningChunk("the user wants s", summary=False)  # 's' could begin the key: held
        yield TextChunk("Hello")
        yield FinishChunk("stop")

    async def aclose(self) -> None:
        return None


async def test_a_held_back_thought_is_released_before_the_answer_begins() -> None:
    from llmtool.service import LLMService

    service = LLMService(load_settings(openai_api_key=KEY))
    service.providers._providers["demo"] = _ThinksThenAnswers()
    events = [event async for event in service.start({"model": "demo:echo", "prompt": "x"}).events()]
    await service.aclose()
    streamed = [(e.kind, e.text, getattr(e, "summary", None)) for e in events if e.kind in ("reasoning", "text")]
    assert streamed == [("reasoning", "the user wants ", False), ("reasoning", "s", False), ("text", "Hello", None)]
