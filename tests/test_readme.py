"""The README's two commands are the ones that work: `.ci/run` runs its test command verbatim."""

from __future__ import annotations

import re

from tests.helpers import REPO


def two_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## The two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section, re.DOTALL)


def test_the_readme_names_a_run_and_a_test_command():
    run, test = two_commands()
    assert run.startswith("pip install -e . && python app.py")
    assert "python -m pytest" in test
    # The browser tests need Chromium: installed by the command itself or by the script it runs.
    install = (REPO / "tests" / "servers" / "install.sh").read_text() if "tests/servers/install.sh" in test else test
    assert "apt-get" in install and "chromium" in install
    assert "ruff check . && mypy && python -m pytest" in test, "lint and types are checked before the tests"


def test_ci_runs_the_readme_test_command_verbatim():
    _, test = two_commands()
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert test in ci


def test_every_cli_command_the_readme_shows_exists():
    from llmtool.cli import build_parser

    commands = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    shown = set(re.findall(r"^llmtool (\w+)", (REPO / "README.md").read_text(), re.MULTILINE))
    assert shown and shown <= commands


def test_the_readme_config_example_is_valid(tmp_path):
    from llmtool.settings import load_settings

    text = (REPO / "README.md").read_text()
    example = re.search(r"```toml\n(# llmtool.toml.+?)```", text, re.DOTALL).group(1)
    (tmp_path / "llmtool.toml").write_text(example)
    settings = load_settings(tmp_path / "llmtool.toml")
    assert settings.validator_modules == ["mychecks"]
    assert settings.endpoints["ollama"].models == ["llama3.2", "qwen2.5:7b"]
    assert settings.timeouts.first_token == 60 and settings.demo.tokens_per_second == 60


def test_the_readme_partner_example_is_valid(tmp_path):
    from llmtool.settings import load_settings

    text = (REPO / "README.md").read_text()
    example = re.search(r"```toml\n(# partners, in llmtool.toml.+?)```", text, re.DOTALL).group(1)
    (tmp_path / "llmtool.toml").write_text(example)
    partner = load_settings(tmp_path / "llmtool.toml").roles["partner"]
    assert partner.models == ["openai:gpt-4.1-mini", "demo:*"] and not partner.uploads
    assert partner.daily_budget == 5.0 and partner.max_concurrent_runs == 2
