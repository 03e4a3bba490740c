"""The CLI with reasoning models: the answer alone on stdout, the thoughts on stderr (dimmed on a
terminal, hidden with --no-reasoning), notices on stderr, how to price a model whose cost is unknown
(once), --reasoning-effort for chat and template runs, `logs show` with the thoughts, `models`."""

from __future__ import annotations

import asyncio
import io
import json

import pytest

from llmtool.cli import main
from llmtool.console import DIM, stream_to_console
from llmtool.loopback import LoopbackServer, Scenario
from llmtool.service import LLMService
from llmtool.settings import load_settings

THOUGHT = "Understanding the request"  # how demo:thinker's thoughts begin
SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
          "additionalProperties": False}


@pytest.fixture(autouse=True)
def fast_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMTOOL_DEMO__FIRST_TOKEN_DELAY", "0")
    monkeypatch.setenv("LLMTOOL_DEMO__TOKENS_PER_SECOND", "100000")


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch):
    with LoopbackServer() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-loopback-secret")
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        yield server


def test_chat_prints_the_thoughts_on_stderr_and_the_answer_alone_on_stdout(capsys) -> None:
    assert main(["chat", "-m", "demo:thinker", "--reasoning-effort", "minimal", "Plan a picnic"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("## About: Plan a picnic") and THOUGHT not in out
    assert "· thinking…\n" in err and THOUGHT in err
    assert err.index(THOUGHT) < err.index("· done (stop)")
    assert "\x1b[" not in err  # not a terminal: no colour codes
    assert "thought 0." in err and "reasoning" in err  # the metrics line: seconds thought, reasoning tokens


def test_no_reasoning_hides_the_thoughts(capsys) -> None:
    assert main(["chat", "-m", "demo:thinker", "--reasoning-effort", "minimal", "--no-reasoning", "Plan"]) == 0
    out, err = capsys.readouterr()
    assert THOUGHT not in out and THOUGHT not in err
    assert "· thinking… (--no-reasoning: its thoughts are not shown)" in err and out.startswith("## About: Plan")


def test_effort_none_prints_no_thinking(capsys) -> None:
    assert main(["chat", "-m", "demo:thinker", "--reasoning-effort", "none", "Plan"]) == 0
    assert "thinking" not in capsys.readouterr().err


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_thoughts_are_dimmed_unless_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    async def go() -> tuple[str, str]:
        service = LLMService(load_settings(demo={"first_token_delay": 0.0, "tokens_per_second": 100_000}))
        out, err = io.StringIO(), Terminal()
        request = {"model": "demo:thinker", "prompt": "Plan", "reasoning_effort": "minimal"}
        assert await stream_to_console(service, request, out, err) == 0
        await service.aclose()
        return out.getvalue(), err.getvalue()

    out, err = asyncio.run(go())
    assert f"{DIM}**{THOUGHT}" in err and "\x1b" not in out
    monkeypatch.setenv("NO_COLOR", "1")
    out, err = asyncio.run(go())
    assert THOUGHT in err and "\x1b" not in err


@pytest.mark.parametrize(("argv", "words"), [
    (["chat", "-m", "demo:assistant", "--reasoning-effort", "low", "hi"],
     "demo:assistant is not a reasoning model: leave the reasoning effort unset"),
    (["chat", "-m", "demo:nothing", "hi"], "unknown model 'nothing' for provider 'demo'"),
])
def test_a_refused_effort_or_model_exits_2_with_one_line(capsys, argv, words) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and words in err and len(err.strip().splitlines()) == 1


def test_an_effort_outside_the_list_is_an_argument_error(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["chat", "--reasoning-effort", "extreme", "hi"])
    assert exited.value.code == 2 and "minimal" in capsys.readouterr().err


def test_a_model_without_a_price_says_cost_unknown_and_how_to_price_it_once(loopback, capsys) -> None:
    loopback.enqueue(Scenario(text="Fresh model here.", tokens_per_second=2000))
    assert main(["chat", "-m", "openai:gpt-9-preview", "hi"]) == 0
    out, err = capsys.readouterr()
    assert out == "Fresh model here.\n"
    assert "cost unknown" in err and "$0.0000" not in err
    assert err.count('[prices."openai:gpt-9-preview"]') == 1
    assert main(["chat", "-m", "demo:echo", "priced"]) == 0
    assert "[prices." not in capsys.readouterr().err  # a priced model: no hint


def test_a_notice_goes_to_stderr(loopback) -> None:
    loopback.enqueue(Scenario(reject_structured_output=True), Scenario(text='{"ok": true}', tokens_per_second=2000))

    async def go() -> tuple[int, str, str]:
        service = LLMService(load_settings())
        out, err = io.StringIO(), io.StringIO()
        request = {"model": "openai:gpt-4.1-mini", "prompt": "ok?", "validation": {"json_schema": SCHEMA}}
        code = await stream_to_console(service, request, out, err)
        await service.aclose()
        return code, out.getvalue(), err.getvalue()

    code, out, err = asyncio.run(go())
    assert code == 0 and out == '{"ok": true}\n'
    assert "cannot be asked for structured output" in err


def test_a_template_run_takes_the_effort_over_the_templates(prompts_dir, capsys) -> None:
    (prompts_dir / "plan.md").write_text("---\nmodel: demo:thinker\nreasoning_effort: high\nvariables:\n"
                                         "  goal: {}\n---\nPlan {{ goal }}.\n")
    assert main(["run", "plan", "-v", "goal=a picnic", "--reasoning-effort", "minimal", "--no-reasoning"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("## About: Plan a picnic") and THOUGHT not in err
    assert "thought 0." in err  # minimal: 0.6 s, not the template's high (3.5 s)
    run_id = err.split(" · run ", 1)[1].split()[0]
    assert main(["logs", "show", run_id, "--json"]) == 0
    request = json.loads(capsys.readouterr().out)["request"]
    assert request["reasoning_effort"] == "minimal" and request["template"] == "plan"


def test_logs_show_the_thoughts_apart_from_the_answer(capsys) -> None:
    assert main(["chat", "-m", "demo:thinker", "--reasoning-effort", "minimal", "--no-reasoning", "Plan it"]) == 0
    run_id = capsys.readouterr().err.split(" · run ", 1)[1].split()[0]
    assert main(["logs", "show", run_id]) == 0
    shown = capsys.readouterr().out
    assert 'reasoning_effort="minimal"' in shown
    reasoning = shown.split("\nreasoning (thought 0.", 1)[1].split("\nanswer", 1)[0]
    assert f"  **{THOUGHT}.**" in reasoning and "About: Plan it" not in reasoning
    answer = shown.split("\nanswer", 1)[1].split("\nmetrics", 1)[0]
    assert THOUGHT not in answer and "About: Plan it" in answer
    assert "reasoning ×" in shown and "text ×" in shown  # the event log, a stretch of each
    assert main(["logs", "-n", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[0])["reasoning"].startswith(f"**{THOUGHT}")


def test_models_lists_each_providers_models_saying_which_are_live(loopback, capsys) -> None:
    assert main(["models"]) == 0
    out, err = capsys.readouterr()
    assert "· openai: " in err and "as the provider lists them" in err
    assert "· demo: 4 models, configured" in err
    assert "demo:thinker" in out and "reasoning: none, minimal" in out and "openai:gpt-4.1-mini" in out


def test_models_says_why_a_list_could_not_be_read(loopback, capsys) -> None:
    loopback.enqueue_models(Scenario.preset("unauthorized"))
    assert main(["models"]) == 0
    out, err = capsys.readouterr()
    assert "· openai: " in err and "configured; its list could not be read:" in err and "sk-loopback" not in err
    assert "openai:gpt-4.1-mini" in out  # the configured models stand in
    assert main(["models", "--configured"]) == 0
    assert "demo:thinker" in capsys.readouterr().out
