"""Issue 7's "done when", as a person would see it: `kill -9` the server mid-answer, start it again,
and the run is in the History tab as interrupted with its partial text, and opens back in the Chat."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from gradio_client import Client

from llmtool.settings import load_settings
from llmtool.web.app import create_app
from llmtool.web.serve import BackgroundServer
from tests.ui.browser_support import LAST_BOT, OUTPUT, REPO, pytestmark  # noqa: F401  (marks)

PROMPT = "Tell me about streaming answers at length."


def _serve_in_a_process(database_url: str) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMTOOL_", "OPENAI_", "ANTHROPIC_"))}
    env |= {"LLMTOOL_DATABASE_URL": database_url, "LLMTOOL_DEMO__FIRST_TOKEN_DELAY": "0",
            "LLMTOOL_DEMO__TOKENS_PER_SECOND": "15", "LLMTOOL_STORE__FLUSH_INTERVAL": "0.2"}
    process = subprocess.Popen([sys.executable, "app.py", "--port", "0"], cwd=REPO, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        found = re.search(r"serving on (http://\S+)", line)
        if found:
            return process, found.group(1)
    process.kill()
    raise AssertionError("the app did not start")


def test_a_run_killed_mid_answer_is_interrupted_in_history_and_opens_in_chat(tmp_path: Path, open_page) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'runs.db'}"
    process, url = _serve_in_a_process(database_url)
    try:
        job = Client(url, verbose=False).submit(PROMPT, "demo:assistant", api_name="/chat")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait for some text to be written, then kill -9
            outputs = job.outputs()
            chat = outputs[-1][0] if outputs else []
            if chat and len(str(chat[-1].get("content", ""))) > 40:
                break
            time.sleep(0.1)
        time.sleep(0.5)  # past the writer's next flush
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()

    settings = load_settings(database_url=database_url)
    with BackgroundServer(create_app(settings)) as server:  # the next start marks the run interrupted
        ui = open_page(server.url)
        ui.open_tab("History")
        table = ui.wait_text("#history-table", "interrupted")
        assert PROMPT[:20] in table
        ui.page.click('#history-table [data-testid="cell-0-5"]')  # its prompt cell
        status = ui.wait_text("#history-run-status", "Interrupted", start=True)
        assert "server stopped" in status
        partial = ui.text_of("#history-answer")
        assert len(partial) > 20

        OUTPUT.mkdir(exist_ok=True)
        ui.page.screenshot(path=str(OUTPUT / "history-interrupted.png"), full_page=True)

        ui.page.click("#history-open-in-chat")
        ui.page.wait_for_function(f"() => ({LAST_BOT})().includes('Interrupted')")
        assert partial[:20] in ui.answer()
        assert ui.page.is_visible("#prompt textarea")  # the Chat tab, ready to continue
