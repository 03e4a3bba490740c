"""The History tab over the API: list, pages, filters, search, open, re-run, delete, export, logins.

Each test serves a Blocks holding only the History tab (mounted like the app: FastAPI, the security
headers, `page_options()`) with its own SQLite run store; runs are made through the tab's
`context.service` on the server's loop.
"""

from __future__ import annotations

import asyncio
import csv
import json
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr
import pytest
from fastapi import FastAPI
from gradio_client import Client

from llmtool.service import RunRequest
from llmtool.settings import Settings, load_settings
from llmtool.store import RunOrigin, RunRecord
from llmtool.store.records import ENDED_STATUSES
from llmtool.ui import history
from llmtool.ui.blocks import page_options
from llmtool.web import login
from llmtool.web.app import mount_tool
from llmtool.web.context import AppContext
from llmtool.web.security import SecurityHeaders
from llmtool.web.serve import BackgroundServer
from tests.helpers import session_client

T = TypeVar("T")
REPO_PROMPTS = Path(__file__).resolve().parents[2] / "prompts"
# The outputs an API caller gets (Gradio leaves out states, buttons and layout blocks).
OUTPUT_NAMES = ["table", "page", "message", "run_id", "title", "status", "answer", "validation", "metrics",
                "request", "template", "events", "export"]


def history_settings(tmp_path: Path, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'runs.db'}",
        "demo": {"first_token_delay": 0.0, "tokens_per_second": 2000},
        "retry": {"initial_delay": 0.01, "max_delay": 0.05, "jitter": 0.0},
        "prompts_dir": REPO_PROMPTS,
    }
    return load_settings(**{**values, **extra})


class HistoryApp:
    """The History tab served alone on 127.0.0.1, as the app serves its tabs."""

    def __init__(self, settings: Settings, users: list[tuple[str, str]] | None = None, page_size: int = 5,
                 with_store: bool = True) -> None:
        logins = dict(users or [])
        self.context = context = AppContext(settings, auth=(lambda u, p: logins.get(u) == p) if users else None)
        self.loop: asyncio.AbstractEventLoop | None = None
        ready = threading.Event()

        @asynccontextmanager
        async def lifespan(_: FastAPI):  # type: ignore[no-untyped-def]
            await context.start()
            if not with_store:  # a service that keeps nothing
                await context.service.aclose()
                context.service.store = None
                context.service.recorder = None
            self.loop = asyncio.get_running_loop()
            ready.set()
            try:
                yield
            finally:
                await context.aclose()

        app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
        app.add_middleware(SecurityHeaders)
        app.state.context = context
        app.include_router(login.router)  # logins as the app has them: /login, sessions
        with gr.Blocks(title="history", analytics_enabled=False) as blocks, gr.Tabs(), \
                gr.Tab("History", id="history-tab"):
            self.view = history.build(context, 4, page_size=page_size)
        blocks.queue(default_concurrency_limit=4)
        app = mount_tool(app, blocks, context, **page_options())
        self.server = BackgroundServer(app).start()
        assert ready.wait(10)
        self.url = self.server.url

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def make_run(self, prompt: str, *, model: str = "demo:echo", user: str | None = None,
                 source: str = "api", conversation_id: str | None = None, position: int | None = None,
                 template: str | None = None, variables: dict[str, Any] | None = None) -> RunRecord:
        """A finished run, stored."""
        async def make() -> RunRecord:
            service = self.context.service
            if template is not None:
                request = self.context.registry.get(template).to_run_request(variables or {})
            else:
                request = RunRequest(model=model, prompt=prompt)
            origin = RunOrigin(user=user, source=source, conversation_id=conversation_id,  # type: ignore[arg-type]
                               position=position)
            run = service.start(request, origin)
            await run.wait()
            return await stored(self.context, run.id)

        return self.call(make())

    def record(self, run_id: str) -> RunRecord | None:
        async def get() -> RunRecord | None:
            store = self.context.service.store
            assert store is not None
            return await store.get_run(run_id)

        return self.call(get())

    def stop(self) -> None:
        self.server.stop()


async def stored(context: AppContext, run_id: str, timeout: float = 5.0) -> RunRecord:
    store = context.service.store
    assert store is not None
    deadline = time.monotonic() + timeout
    while True:
        record = await store.get_run(run_id)
        if record is not None and record.status in ENDED_STATUSES:
            return record
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} was not stored within {timeout:g} s")
        await asyncio.sleep(0.02)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., HistoryApp]]:
    apps: list[HistoryApp] = []

    def start(**kwargs: Any) -> HistoryApp:
        settings = history_settings(tmp_path, **kwargs.pop("settings", {}))
        apps.append(HistoryApp(settings, **kwargs))
        return apps[-1]

    yield start
    for app in apps:
        app.stop()


@pytest.fixture
def clients() -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(url: str, auth: tuple[str, str] | None = None) -> Client:
        made.append(session_client(url, *auth) if auth else Client(url, verbose=False, download_files=False))
        return made[-1]

    yield make
    for client in made:
        threading.Thread(target=client.close, daemon=True).start()


def named(outputs: tuple[Any, ...] | list[Any]) -> dict[str, Any]:
    assert len(outputs) == len(OUTPUT_NAMES)
    return dict(zip(OUTPUT_NAMES, outputs, strict=True))


def search(client: Client, status: str = "(any)", model: str = "(any)", template: str = "(any)", user: str = "",
           date_from: str = "", date_to: str = "", text: str = "") -> dict[str, Any]:
    return named(client.predict(status, model, template, user, date_from, date_to, text, api_name="/history"))


def ids(result: dict[str, Any]) -> list[str]:
    return [row[-1] for row in result["table"]["data"]]


def prompts(result: dict[str, Any]) -> list[str]:
    return [row[5] for row in result["table"]["data"]]


def value(output: Any) -> Any:
    """A component's value, whether sent plainly or inside an update."""
    return output.get("value") if isinstance(output, dict) and output.get("__type__") == "update" else output


# -- the list -------------------------------------------------------------------------------------
def test_list_is_newest_first_and_paged(serve, clients) -> None:
    app = serve(page_size=5)
    made = [app.make_run(f"prompt number {i}") for i in range(12)]
    client = clients(app.url)
    first = search(client)
    assert ids(first) == [r.id for r in reversed(made)][:5]
    assert first["page"] == "runs 1–5 of 12"
    row = first["table"]["data"][0]
    assert row[1] == "✓ completed" and row[2] == "demo:echo" and row[5] == "prompt number 11"
    assert "prompt number 11" in row[6]  # the echo's answer
    assert row[8] and row[9]  # total s, tokens in→out

    second = named(client.predict(api_name="/history_older"))
    assert ids(second) == [r.id for r in reversed(made)][5:10]
    assert second["page"] == "runs 6–10 of 12"
    third = named(client.predict(api_name="/history_older"))
    assert third["page"] == "runs 11–12 of 12"
    back = named(client.predict(api_name="/history_newer"))
    assert back["page"] == "runs 6–10 of 12" and ids(back) == ids(second)


def test_filters_and_search(serve, clients) -> None:
    app = serve(page_size=50)
    invoice = app.make_run("Please check the invoice total", model="demo:echo")
    other = app.make_run("Write a haiku about autumn", model="demo:assistant")
    app.make_run("An invoiced amount is not the word", model="demo:echo")
    templated = app.make_run("", template="summarise", variables={"text": "A long text about a quarterly invoice."})
    client = clients(app.url)

    assert ids(search(client, model="demo:assistant")) == [templated.id, other.id]  # the template's model
    assert ids(search(client, text="invoice total")) == [invoice.id]  # whole words, all required
    assert ids(search(client, text="INVOICE")) == [templated.id, invoice.id]  # "invoiced" is another word
    assert ids(search(client, template="summarise")) == [templated.id]
    row = search(client, template="summarise")["table"]["data"][0]
    assert row[3] == f"summarise @ {templated.template_hash[:12]}"
    assert ids(search(client, status="failed")) == []
    assert search(client, status="failed")["page"] == "no runs match"
    today = time.strftime("%Y-%m-%d")
    assert len(ids(search(client, date_from=today, date_to=today))) == 4
    assert ids(search(client, date_to="2001-01-31")) == []
    assert ids(search(client, user="nobody")) == []


def test_a_bad_date_is_a_clear_message(serve, clients) -> None:
    app = serve()
    app.make_run("hello")
    client = clients(app.url)
    result = search(client, date_from="31/12/2024")
    assert "Date from" in result["message"] and "YYYY-MM-DD" in result["message"]
    assert "Traceback" not in result["message"]
    result = search(client, date_from="2025-02-30")
    assert "not a date" in result["message"]
    result = search(client, date_from="2025-03-02", date_to="2025-03-01")
    assert "after" in result["message"]


# -- one run --------------------------------------------------------------------------------------
def test_open_shows_request_answer_events_and_template(serve, clients) -> None:
    app = serve()
    plain = app.make_run("Tell me about <b>bold</b> *stars*", user=None, conversation_id="conv-1", position=0)
    templated = app.make_run("", template="classify", variables={"product": "Acme", "ticket": "It crashes"})
    client = clients(app.url)

    opened = named(client.predict(plain.id, api_name="/history_open"))
    assert opened["run_id"] == plain.id
    assert "conversation conv-1 turn 1" in opened["title"]
    assert "Tell me about" in opened["request"] and "```text" in opened["request"]
    assert "demo:echo" in opened["request"]
    assert "Tell me about" in opened["answer"]
    assert opened["status"].startswith("Completed")
    assert "total" in opened["metrics"]
    kinds = [row[1] for row in opened["events"]["data"]]
    assert kinds[0] == "started" and kinds[-1] == "completed"
    text_rows = [row for row in opened["events"]["data"] if row[1].startswith("text ×")]
    assert len(text_rows) == 1 and "chars" in text_rows[0][3]  # the deltas, collapsed
    assert opened["template"] == ""

    opened = named(client.predict(templated.id, api_name="/history_open"))
    assert f"classify @ {templated.template_hash}" in opened["request"]
    assert "Acme" in opened["request"]  # the variables
    assert opened["validation"].startswith("Validation")
    assert "You triage support tickets" in opened["template"]
    assert "conversation" not in opened["title"]

    missing = named(client.predict("0123456789ab", api_name="/history_open"))
    assert "not found" in missing["message"] and missing["answer"] == ""


def test_rerun_makes_a_new_stored_run_from_history(serve, clients) -> None:
    app = serve()
    original = app.make_run("Say the word pineapple", user=None, source="chat")
    client = clients(app.url)
    client.predict(original.id, api_name="/history_open")
    job = client.submit(original.id, api_name="/history_rerun")
    updates = [named(o) for o in job]  # every yield, then the final one
    final = named(job.result())
    assert updates
    new_id = final["run_id"]
    assert new_id and new_id != original.id
    assert "pineapple" in final["answer"]
    assert final["status"].startswith("Completed")
    record = app.record(new_id)
    assert record is not None and record.source == "history" and record.status == "completed"
    assert record.request["messages"] == original.request["messages"]
    assert ids(final)[0] == new_id  # the list shows it


def test_stop_cancels_a_rerun(serve, clients) -> None:
    app = serve(settings={"demo": {"first_token_delay": 0.0, "tokens_per_second": 20}})
    original = app.make_run("x", model="demo:assistant")
    client = clients(app.url)
    job = client.submit(original.id, api_name="/history_rerun")
    deadline = time.monotonic() + 10
    while not [o for o in job.outputs() if "Streaming" in str(named(o)["status"])]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    client.predict(api_name="/history_stop")
    final = named(job.result())
    record = app.record(final["run_id"])
    assert record is not None and record.status == "stopped" and record.source == "history"


def test_delete_run_and_conversation(serve, clients) -> None:
    app = serve()
    keep = app.make_run("keep me")
    gone = app.make_run("delete me")
    turn1 = app.make_run("turn one", conversation_id="c-9", position=0)
    turn2 = app.make_run("turn two", conversation_id="c-9", position=1)
    client = clients(app.url)
    search(client)

    client.predict(gone.id, api_name="/history_open")
    result = named(client.predict("run", gone.id, api_name="/history_delete"))
    assert f"Deleted run {gone.id}" in result["message"]
    assert gone.id not in ids(result) and keep.id in ids(result)
    assert app.record(gone.id) is None

    result = named(client.predict("conversation", turn2.id, api_name="/history_delete"))
    assert "Deleted 2 runs" in result["message"]
    assert ids(result) == [keep.id]
    assert app.record(turn1.id) is None and app.record(turn2.id) is None


def test_export_has_every_filtered_run(serve, clients) -> None:
    app = serve(page_size=3)
    wanted = [app.make_run(f"apple number {i}") for i in range(7)]
    app.make_run("banana")
    client = clients(app.url)
    first = search(client, text="apple")
    assert first["page"] == "runs 1–3 of 7"
    result = named(client.predict("jsonl", api_name="/history_export"))
    assert "Exported 7 runs" in result["message"]
    path = Path(value(result["export"])["path"] if isinstance(value(result["export"]), dict)
                else value(result["export"]))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted(r["id"] for r in lines) == sorted(r.id for r in wanted)

    result = named(client.predict("csv", api_name="/history_export"))
    path2 = Path(value(result["export"])["path"] if isinstance(value(result["export"]), dict)
                 else value(result["export"]))
    assert path2 != path and path2.suffix == ".csv"
    with path2.open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 7 and all("apple" in row["prompt"] for row in rows)


def test_each_user_sees_only_their_own_runs(serve, clients) -> None:
    app = serve(users=[("ann", "pw-ann"), ("bob", "pw-bob")])
    ann = app.make_run("ann's secret plan", user="ann")
    bob = app.make_run("bob's grocery list", user="bob")
    app.make_run("a run without a user")
    as_ann = clients(app.url, auth=("ann", "pw-ann"))
    as_bob = clients(app.url, auth=("bob", "pw-bob"))

    assert ids(search(as_ann)) == [ann.id]
    assert ids(search(as_bob)) == [bob.id]
    assert ids(search(as_ann, user="bob")) == [ann.id]  # the login wins over the filter
    assert "yours only" in search(as_ann)["page"]
    assert "not found" in named(as_ann.predict(bob.id, api_name="/history_open"))["message"]
    assert "not found" in named(as_ann.predict("run", bob.id, api_name="/history_delete"))["message"]
    assert app.record(bob.id) is not None
    exported = named(as_ann.predict("jsonl", api_name="/history_export"))
    path = value(exported["export"])
    path = Path(path["path"] if isinstance(path, dict) else path)
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == [ann.id]

    final = named(as_ann.submit(ann.id, api_name="/history_rerun").result())
    record = app.record(final["run_id"])
    assert record is not None and record.user == "ann" and record.source == "history"
    assert "not found" in named(as_bob.predict(ann.id, api_name="/history_open"))["message"]
    refused = named(as_bob.submit(ann.id, api_name="/history_rerun").result())  # naming it is not enough
    assert "not found" in refused["message"]


def test_without_a_store_the_tab_says_runs_are_not_kept(serve, clients) -> None:
    app = serve(with_store=False)
    client = clients(app.url)
    result = search(client)
    assert "not kept" in result["message"]
    assert "not found" in named(client.predict("abc", api_name="/history_open"))["message"]


def test_store_errors_are_a_message(serve, clients) -> None:
    app = serve()
    app.make_run("hello")
    client = clients(app.url)
    service = app.context.started_service()
    assert service is not None and service.store is not None
    store = service.store

    async def broken(*args: Any, **kwargs: Any) -> Any:
        from llmtool.store import StoreError
        raise StoreError("the database is locked")

    store.list_runs = broken  # type: ignore[method-assign]
    result = search(client)
    assert "cannot read the runs: the database is locked" in result["message"]
