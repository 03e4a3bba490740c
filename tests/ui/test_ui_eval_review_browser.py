"""The Evaluate tab in Debian's Chromium, with logins: a permalink opens a stored evaluation (its
comparison with the baseline, the template diff, the charts as SVG with their labels, no CSP error),
a selected cell shows its run; another user's permalink is "not found"; an evaluation run with
repeats draws its charts; `?run=ID` opens the run in History (`evaluate.wire_run_permalink`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import httpx
import pytest
from fastapi import FastAPI

from llmtool.settings import load_settings
from llmtool.store import CellAssertion, CellRun, EvaluationCell, EvaluationRecord, RunOrigin, TemplateVersion
from llmtool.ui import evaluate, history
from llmtool.ui.blocks import page_options
from llmtool.web.app import create_app, mount_tool
from llmtool.web.context import AppContext
from llmtool.web.security import SecurityHeaders
from llmtool.web.serve import BackgroundServer
from tests.helpers import log_in, session_client, write_template
from tests.ui.browser_support import OUTPUT, pytestmark  # noqa: F401  (marks)
from tests.ui.ui_support import on_server_loop

USERS = {"ann": "ann-password-1", "bob": "bob-password-1"}
HEAD = "---\nmodel: demo:echo\nvariables:\n  ticket: {type: text}\n---\n"
V1 = HEAD + "Ticket: {{ ticket }}\n"
V2 = HEAD + "Support ticket: {{ ticket }}\n"
DATASET = "id,ticket,expect_contains\na,refund please,refund\nb,the export crashes,crash\nc,hello there,hello\n"
# (case: ticket, passed in the baseline, passed now, why it failed)
CASES = {"a": ("refund please", True, True), "b": ("the export crashes", True, False),
         "c": ("hello there", False, True)}
CSP_WORDS = ("Content Security Policy", "EvalError", "unsafe-eval")


@dataclass
class Served:
    server: BackgroundServer
    context: AppContext
    runs: dict[str, str]

    @property
    def url(self) -> str:
        return self.server.url


async def stored_run(context: AppContext, run_id: str) -> None:
    store = context.service.store
    assert store is not None
    deadline = time.monotonic() + 10
    while (record := await store.get_run(run_id)) is None or not record.ended:
        assert time.monotonic() < deadline, f"run {run_id} was not stored"
        await asyncio.sleep(0.02)


async def seed(context: AppContext) -> dict[str, str]:
    """Two evaluations of `tickets` by ann (base: v1, then cur: v2, which regressed b and fixed c)
    with real runs for cur's cells, and one of bob's."""
    service, store = context.service, context.service.store
    assert store is not None
    template = context.registry.get("tickets")
    await store.save_template(TemplateVersion(hash="0000v1", name="tickets", content=V1))
    await store.save_template(TemplateVersion(hash=template.content_hash, name="tickets", content=V2))
    runs = {}
    for case, (ticket, _, _) in CASES.items():
        run = service.start(template.to_run_request({"ticket": ticket}, model="demo:echo"),
                            RunOrigin(user="ann", source="evaluation", evaluation_id="cur"))
        await run.wait()
        runs[case] = run.id
    for run_id in runs.values():
        await stored_run(context, run_id)
    now = time.time()
    for evaluation_id, user, content_hash, created, passed_at in (
            ("base", "ann", "0000v1", now - 100, 1), ("cur", "ann", template.content_hash, now - 50, 2),
            ("bobs", "bob", template.content_hash, now - 10, 2)):
        await store.add_evaluation(EvaluationRecord(
            id=evaluation_id, user=user, template="tickets", template_hash=content_hash, dataset="tickets.csv",
            dataset_hash="d", models=["demo:echo"], created_at=created))
        cells = []
        for case, facts in CASES.items():
            passed = bool(facts[passed_at])
            reason = "" if passed else f"expected to contain '{facts[0].split()[-1]}'"
            assertion = CellAssertion(type="contains", label=f"contains '{facts[0].split()[-1]}'", passed=passed,
                                      score=1.0 if passed else 0.0, reason=reason or "found")
            run_id = runs[case] if evaluation_id == "cur" else None
            cells.append(EvaluationCell(case_id=case, model="demo:echo", run_id=run_id, passed=passed, reason=reason,
                                        runs=[CellRun(run_id=run_id, status="passed" if passed else "failed",
                                                      reason=reason, assertions=[assertion], latency=0.1 * passed_at,
                                                      output_tokens=5 * passed_at, cost_usd=0.0)]))
        await store.finish_evaluation(evaluation_id, "completed", cells)
    return runs


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("eval-review")
    prompts = root / "prompts"
    (prompts / "datasets").mkdir(parents=True)
    write_template(prompts, "tickets", V2)
    (prompts / "datasets" / "tickets.csv").write_text(DATASET, encoding="utf-8")
    settings = load_settings(database_url=f"sqlite+aiosqlite:///{root / 'runs.db'}", prompts_dir=str(prompts),
                             default_model="demo:echo", demo={"first_token_delay": 0.0, "tokens_per_second": 4000})
    context = AppContext(settings, auth=lambda user, password: USERS.get(user) == password)
    with BackgroundServer(create_app(context=context)) as server:
        runs = on_server_loop(context, seed(context), timeout=30)
        yield Served(server, context, runs)


@pytest.fixture
def page_as(browser, served: Served) -> Iterator:
    contexts: list = []

    def open_as(user: str, path: str):  # type: ignore[no-untyped-def]
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        contexts.append(context)
        context.add_cookies([{"name": "llmtool_session", "value": log_in(served.url, user, USERS[user]),
                              "url": served.url}])
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.console = []  # type: ignore[attr-defined]
        page.on("console", lambda message: page.console.append(message.text))  # type: ignore[attr-defined]
        page.goto(served.url + path)
        page.wait_for_selector("#prompt textarea" if path == "/" else "#eval-progress", state="attached")
        return page

    yield open_as
    for context in contexts:
        context.close()


def wait_text(page, selector: str, text: str) -> str:  # type: ignore[no-untyped-def]
    page.wait_for_function("([s, t]) => document.querySelector(s)?.innerText.includes(t)", arg=[selector, text])
    return page.inner_text(selector)


def csp_errors(page) -> list[str]:  # type: ignore[no-untyped-def]
    return [m for m in page.console if any(word in m for word in CSP_WORDS)]


def test_a_permalink_opens_the_evaluation_with_its_baseline_charts_and_cells(served, page_as) -> None:
    page = page_as("ann", "/?evaluation=cur")
    progress = wait_text(page, "#eval-progress", "Stored evaluation")
    assert "Done · 2/3 passed" in progress
    assert page.get_by_role("tab", name="Evaluate").get_attribute("aria-selected") == "true"
    comparison = wait_text(page, "#eval-comparison", "Compared with")
    assert "evaluation base" in comparison and "template @0000v1 →" in comparison
    assert "▲ fixed 1" in comparison and "▼ regressed 1" in comparison and "1 still passing" in comparison
    assert "▼ regressed · b × demo:echo: expected to contain 'crashes'" in comparison
    diff = page.inner_text("#eval-diff")
    assert "-Ticket: {{ ticket }}" in diff and "+Support ticket: {{ ticket }}" in diff
    assert "?evaluation=cur" in (page.get_attribute("#eval-link a", "href") or "")

    assert page.locator("#eval-charts svg").count() == 3
    labels = page.evaluate("() => [...document.querySelectorAll('#eval-charts svg text')].map(t => t.textContent)")
    titles = page.evaluate("() => [...document.querySelectorAll('#eval-charts svg > title')].map(t => t.textContent)")
    assert titles == ["Pass rate per model", "Latency per model", "Cost per model"]
    assert {"baseline", "this version", "67%"} <= set(labels)
    assert any("demo:echo" in label for label in labels)
    assert page.locator("#eval-charts svg rect").count() >= 2  # the bars are drawn
    assert page.inner_text("#eval-table [data-testid=cell-1-1]").endswith("▼ regressed")

    page.click("#eval-changed-only input")
    page.wait_for_function("() => document.querySelector('#eval-table').innerText.split('\\n').every("
                           "line => !line.startsWith('a'))")
    assert "c" in page.inner_text("#eval-table [data-testid=cell-1-0]")  # b, then c: the changed rows

    page.click("#eval-table [data-testid=cell-0-1]")  # b × demo:echo
    title = wait_text(page, "#eval-cell-title", "b × demo:echo")
    assert "✗ failed: expected to contain 'crashes'" in title
    assert page.get_attribute("#eval-cell-title a", "href") == f"?run={served.runs['b']}"
    assert "Support ticket: the export crashes" in wait_text(page, "#eval-cell-request", "Messages")
    assert "Support ticket: the export crashes" in page.inner_text("#eval-cell-answer")
    checks = page.inner_text("#eval-cell-checks")
    assert "Assertions · 0 of 1 passed" in checks and "contains 'crashes'" in checks
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(Path(OUTPUT) / "evaluate-baseline.png"), full_page=True)
    assert csp_errors(page) == []


def test_a_permalink_survives_the_login(served) -> None:
    answer = httpx.get(f"{served.url}/?evaluation=cur", follow_redirects=False, timeout=10)
    assert answer.status_code == 303 and answer.headers["location"] == "/login?next=%2F%3Fevaluation%3Dcur"


def test_api_callers_open_an_evaluation_by_id(served) -> None:
    from gradio_client import Client

    client: Client = session_client(served.url, "ann", USERS["ann"])
    try:
        progress, *rest = client.predict("cur", "base", api_name="/evaluation_open")
        assert progress.startswith("Stored evaluation · Done · 2/3 passed")
        assert any(isinstance(value, str) and "▼ regressed 1" in value for value in rest)
        assert client.predict("bobs", "last", api_name="/evaluation_open")[0] == "⚠ evaluation bobs not found"
    finally:
        client.close()


def test_another_users_permalink_is_not_found_like_a_missing_one(served, page_as) -> None:
    page = page_as("bob", "/?evaluation=cur")
    assert wait_text(page, "#eval-progress", "not found") == "⚠ evaluation cur not found"
    assert page.locator("#eval-charts svg").count() == 0 and page.inner_text("#eval-comparison") == ""
    page.goto(served.url + "/?evaluation=nothing-here")
    assert wait_text(page, "#eval-progress", "not found") == "⚠ evaluation nothing-here not found"


def test_an_evaluation_with_repeats_draws_its_charts_and_compares_with_the_last(served, page_as) -> None:
    page = page_as("ann", "/")
    page.get_by_role("tab", name="Evaluate").click()
    for selector, value in (("#eval-template input", "tickets"), ("#eval-dataset input", "tickets.csv")):
        page.wait_for_function("([s, v]) => document.querySelector(s)?.value === v", arg=[selector, value])
    page.fill("#eval-repeats input", "2")
    page.click("#eval-run")
    assert wait_text(page, "#eval-progress", "Done").startswith("Done · 6/6 · 6 passed · 0 failed")
    assert "2 runs per cell" in page.inner_text("#eval-progress")
    assert page.inner_text("#eval-table [data-testid=cell-0-1]").startswith("2/2 ✓")
    assert page.locator("#eval-charts svg").count() == 3
    labels = page.evaluate("() => [...document.querySelectorAll('#eval-charts svg text')].map(t => t.textContent)")
    assert "100%" in labels and "baseline" in labels  # against the last completed one: cur
    comparison = wait_text(page, "#eval-comparison", "Compared with")
    assert "evaluation cur" in comparison and "▲ fixed 1" in comparison
    assert "same template version" in comparison
    assert "Link to this evaluation" in page.inner_text("#eval-link")
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(Path(OUTPUT) / "evaluate-repeats.png"), full_page=True)
    assert csp_errors(page) == []


def test_a_run_permalink_opens_the_run_in_history(served, browser) -> None:
    """What `evaluate.wire_run_permalink(past, tabs)` in blocks.py does, on a page of two tabs (no
    logins, over the same store)."""
    context = AppContext(served.context.settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await context.start()
        try:
            yield
        finally:
            await context.aclose()

    with gr.Blocks() as blocks:
        with gr.Tabs() as tabs:
            with gr.Tab("Evaluate", id="evaluate-tab"):
                gr.Markdown("evaluate")
            with gr.Tab("History", id="history-tab"):
                past = history.build(context, 4)
        evaluate.wire_run_permalink(past, tabs)
    blocks.queue(default_concurrency_limit=4)
    app = FastAPI(lifespan=lifespan)
    app.add_middleware(SecurityHeaders)
    app.state.context = context
    run_id = served.runs["a"]
    with BackgroundServer(mount_tool(app, blocks, context, **page_options())) as server:
        page = browser.new_page()
        try:
            page.goto(f"{server.url}/?run={run_id}")
            page.wait_for_function("id => document.querySelector('#history-title')?.innerText.includes(id)",
                                   arg=run_id, timeout=20_000)
            assert page.get_by_role("tab", name="History").get_attribute("aria-selected") == "true"
            assert "Support ticket: refund please" in page.inner_text("#history-request")
        finally:
            page.close()
