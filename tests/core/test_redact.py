"""Secrets never reach the page: known keys and credentials in URLs are masked."""

from __future__ import annotations

from llmtool.redact import MASK, Redactor, url_secrets
from llmtool.settings import load_settings


def test_masks_every_configured_secret(monkeypatch) -> None:
    monkeypatch.setenv("LOCAL_KEY", "env-key-5678")
    settings = load_settings(
        openai_api_key="sk-test-openai-1234",
        anthropic_api_key="sk-ant-test-9999",
        openai_base_url="https://proxy.example/v1?api-key=query-secret-1",
        endpoints={
            "local": {"base_url": "http://bob:hunter22@10.0.0.2:8000/v1", "api_key": "endpoint-key-42"},
            "other": {"base_url": "http://10.0.0.3/v1", "api_key_env": "LOCAL_KEY"},
        },
    )
    redact = Redactor.from_settings(settings)
    text = ("keys sk-test-openai-1234 sk-ant-test-9999 endpoint-key-42 env-key-5678; "
            "urls http://bob:hunter22@10.0.0.2:8000/v1 https://proxy.example/v1?api-key=query-secret-1")
    shown = redact(text)
    for secret in ("sk-test-openai-1234", "sk-ant-test-9999", "endpoint-key-42", "env-key-5678",
                   "hunter22", "query-secret-1"):
        assert secret not in shown
    assert "http://***@10.0.0.2:8000/v1" in shown
    assert shown.count(MASK) == 6


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
