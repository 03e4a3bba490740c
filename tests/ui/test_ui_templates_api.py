"""Templates, Compare and Evaluate through the Gradio API, against the loopback provider."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import handle_file

from llmtool.loopback import DEFAULT_TEXT, LoopbackServer, Scenario
from llmtool.store import RunQuery, RunRecord
from llmtool.templates import content_hash
from llmtool.web.app import create_app
from llmtool.web.context import AppContext
from llmtool.web.serve import BackgroundServer
from tests.helpers import write_template
from tests.ui.conftest import ui_settings
from tests.ui.ui_support import answer_text, on_server_loop, strings, wait_for

CHAT, STATUS, VALIDATION = 0, 1, 2
# /compare outputs: (status, validation, answer) × 4 columns, then run ids, Run, Stop
C1_STATUS, C1_ANSWER, C2_STATUS, C2_ANSWER = 0, 2, 3, 5
# /evaluate outputs
E_PROGRESS, E_SUMMARY, E_TABLE, E_CSV, E_JSONL = range(5)
SLOW = Scenario(tokens_per_second=25, text="word " * 300)

GREET = """---
description: Greets someone
model: local:m
system: You greet {{ who }} warmly.
variables:
  who: {type: text, default: world, description: Who to greet}
  times: {type: integer, default: 1}
---
Say hello to {{ who }} {{ times }} time(s).
"""
ASK = """---
model: local:m
variables:
  question: {type: long_text}
---
Answer briefly: {{ question }}
"""
# Expectations about the loopback's default answer: two pass, one fails.
DATASET = "\n".join(json.dumps(row) for row in [
    {"id": "mentions-loopback", "who": "Ada", "expect_contains": "Loopback servers"},
    {"id": "mentions-zebras", "who": "Bob", "expect_contains": "zebra"},
    {"id": "mentions-streaming", "times": 2, "expect_regex": "streaming tests"},
]) + "\n"


@dataclass
class App:
    server: BackgroundServer
    context: AppContext
    prompts: Path

    @property
    def url(self) -> str:
        return self.server.url

    def runs(self, count: int) -> list[RunRecord]:
        """The stored records of the app's runs, oldest first, once `count` of them have ended."""
        store = self.context.started_service().store

        def ended() -> list[RunRecord]:
            page = on_server_loop(self.context, store.list_runs(RunQuery(limit=1000)))
            records = [r for r in reversed(page.runs) if r.ended]
            return records if len(records) >= count else []

        return wait_for(ended, timeout=10, what=f"{count} stored runs")


@pytest.fixture
def make_app(loopback: LoopbackServer, tmp_path: Path) -> Iterator[Callable[..., App]]:
    """The app over a templates directory of its own (greet, ask, datasets/greet.jsonl)."""
    prompts = tmp_path / "prompts"
    (prompts / "datasets").mkdir(parents=True)
    write_template(prompts, "greet", GREET)
    write_template(prompts, "ask", ASK)
    (prompts / "datasets" / "greet.jsonl").write_text(DATASET, encoding="utf-8")
    servers: list[BackgroundServer] = []

    def make(**overrides: Any) -> App:
        context = AppContext(ui_settings(loopback, prompts_dir=prompts, **overrides))
        servers.append(BackgroundServer(create_app(context=context)).start())
        return App(servers[-1], context, prompts)

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def app(make_app: Callable[..., App]) -> App:
    return make_app()


def greet_hash(app: App) -> str:
    return content_hash((app.prompts / "greet.md").read_bytes())


# -- chat ---------------------------------------------------------------------------------------
def test_a_template_run_streams_as_a_chat_and_records_the_template_and_hash(app, lb, connect) -> None:
    lb.enqueue(Scenario(text="Hello, Ada!"))
    result = connect(app.url).predict(template="greet", variables={"who": "Ada", "times": 2}, model="local:m",
                                      api_name="/run_template")
    body = lb.requests[0].body
    assert body["messages"] == [
        {"role": "system", "content": "You greet Ada warmly."},
        {"role": "user", "content": "Say hello to Ada 2 time(s)."},
    ]
    assert [answer_text([m]) for m in result[CHAT]] == ["Say hello to Ada 2 time(s).", "Hello, Ada!"]
    assert result[STATUS].startswith("Done · TTFT")
    assert result[STATUS].endswith(f" · template greet @ {greet_hash(app)}")
    run = app.runs(1)[-1]
    assert (run.template, run.template_hash, run.source) == ("greet", greet_hash(app), "template")


def test_empty_fields_mean_the_default(app, lb, connect) -> None:
    connect(app.url).predict(template="greet", variables={"who": "", "times": None}, api_name="/run_template")
    assert lb.requests[0].body["messages"][-1]["content"] == "Say hello to world 1 time(s)."


def test_a_missing_required_variable_is_a_clear_message_and_no_run(app, lb, connect) -> None:
    result = connect(app.url).predict(template="ask", variables={"question": "  "}, api_name="/run_template")
    assert result[STATUS] == "⚠ ask.md:4: missing required variable 'question'"  # relative to prompts/
    assert lb.requests == [] and "Traceback" not in str(result)
    assert str(app.prompts) not in str(result)


def test_the_preview_is_the_exact_prompt_or_the_error(app, connect) -> None:
    client = connect(app.url)
    preview = client.predict(template="greet", variables={"who": "Ada"}, api_name="/preview")
    assert "```text\nYou greet Ada warmly.\n```" in preview
    assert "```text\nSay hello to Ada 1 time(s).\n```" in preview
    bad = client.predict(template="greet", variables={"times": "many"}, api_name="/preview")
    assert bad.startswith("⚠ greet.md:7: variable 'times' must be a whole number")


def test_an_edited_template_is_used_by_the_next_run_without_a_restart(app, lb, connect) -> None:
    client = connect(app.url)
    first = client.predict(template="greet", api_name="/run_template")
    old_hash = greet_hash(app)
    write_template(app.prompts, "greet", GREET.replace("Say hello to", "Wave at"))
    second = client.predict(template="greet", api_name="/run_template")
    assert lb.requests[0].body["messages"][-1]["content"] == "Say hello to world 1 time(s)."
    assert lb.requests[1].body["messages"][-1]["content"] == "Wave at world 1 time(s)."
    assert first[STATUS].endswith(f"greet @ {old_hash}")
    assert second[STATUS].endswith(f"greet @ {greet_hash(app)}") and greet_hash(app) != old_hash


def test_a_broken_template_is_listed_as_a_problem_and_the_others_still_run(app, lb, connect) -> None:
    write_template(app.prompts, "broken", "---\nvariables: [oops\n---\nHi\n")
    client = connect(app.url)
    info = client.predict("greet", api_name="/pick_template")[0]
    assert "⚠ 1 template file could not be loaded (the others work):" in info
    assert "- broken.md:" in info and str(app.prompts) not in info
    refused = client.predict(template="broken", api_name="/run_template")
    assert refused[STATUS].startswith("⚠ broken.md:") and lb.requests == []
    assert client.predict(template="greet", api_name="/run_template")[STATUS].startswith("Done")


def test_regenerate_renders_the_template_again_with_the_same_values(app, lb, connect) -> None:
    lb.enqueue(Scenario(text="One."), Scenario(text="Two."))
    client = connect(app.url)
    client.predict(template="greet", variables={"who": "Ada"}, api_name="/run_template")
    write_template(app.prompts, "greet", GREET.replace("Say hello to", "Wave at"))
    result = client.predict(api_name="/regenerate")
    assert [answer_text([m]) for m in result[CHAT]] == ["Wave at Ada 1 time(s).", "Two."]
    assert lb.requests[1].body["messages"] == [
        {"role": "system", "content": "You greet Ada warmly."},
        {"role": "user", "content": "Wave at Ada 1 time(s)."},
    ]
    assert result[STATUS].endswith(f"template greet @ {greet_hash(app)}")


def test_plain_chat_endpoints_keep_their_inputs(app) -> None:
    # Raw-protocol clients (bench/bench_ui.py) send exactly these inputs: templates added none.
    dependencies = httpx.get(f"{app.url}/config", timeout=10).json()["dependencies"]
    inputs = {d["api_name"]: len(d["inputs"]) for d in dependencies if d.get("api_name")}
    assert inputs["chat"] == 10 and inputs["regenerate"] == 9  # prompt, 8 settings, the turns state


def test_refresh_lists_a_template_added_on_disk(app, connect) -> None:
    client = connect(app.url)
    write_template(app.prompts, "added", ASK)
    dropdown, info, preview = client.predict("greet", api_name="/refresh_templates")  # the revision: the session's
    assert ["added", "added"] in dropdown["choices"] and dropdown["value"] == "greet"
    assert "greet @ " in info
    assert "Say hello to world 1 time(s)." in preview


# -- compare ------------------------------------------------------------------------------------
def compare_args(**extra):
    return {"columns": 2, "template_1": "greet", "model_1": "local:m", "template_2": "ask", "model_2": "local:m",
            "variables": {"who": "Ada", "question": "Why?"}, **extra}


def test_compare_streams_every_column_at_once(app, lb, connect) -> None:
    paced = Scenario(tokens_per_second=40, text="w " * 30)
    lb.enqueue(paced, paced)
    job = connect(app.url).submit(**compare_args(), api_name="/compare")
    job.result(timeout=20)
    outputs = job.outputs()
    finals = {i: strings(outputs, i)[-1] for i in (C1_STATUS, C1_ANSWER, C2_STATUS, C2_ANSWER)}
    assert finals[C1_ANSWER] == finals[C2_ANSWER] == "w " * 30
    assert finals[C1_STATUS].startswith("Done") and finals[C1_STATUS].endswith(f"template greet @ {greet_hash(app)}")
    assert finals[C2_STATUS].startswith("Done") and "template ask @ " in finals[C2_STATUS]
    assert len(set(strings(outputs, C1_ANSWER))) >= 3, "column 1 streamed in several steps"
    prompts = sorted(r.body["messages"][-1]["content"] for r in lb.requests)
    assert prompts == ["Answer briefly: Why?", "Say hello to Ada 1 time(s)."]  # each its own variables
    first, second = lb.requests
    assert second.received_at < first.closed_at and first.received_at < second.closed_at
    assert sorted(r.template for r in app.runs(2)) == ["ask", "greet"]
    assert {r.source for r in app.runs(2)} == {"compare"}


def test_compare_stop_closes_every_upstream_connection(app, lb, connect) -> None:
    lb.enqueue(SLOW, SLOW)
    client = connect(app.url)
    job = client.submit(**compare_args(), api_name="/compare")

    def both_streaming() -> bool:
        outputs = job.outputs()
        return bool(strings(outputs, C1_ANSWER) and strings(outputs, C2_ANSWER)) and all(
            strings(outputs, i)[-1].startswith("word") for i in (C1_ANSWER, C2_ANSWER))

    wait_for(both_streaming, what="both columns to stream")
    result = client.predict(api_name="/compare_stop")
    for index in (0, 1):
        record = lb.wait_closed(index, timeout=5)
        assert record.closed_by_client and record.deltas_sent < 300
    assert result[C1_STATUS].startswith("Stopped after") and result[C2_STATUS].startswith("Stopped after")
    assert result[C1_ANSWER].startswith("word") and "Stopped — partial answer." in result[C1_ANSWER]
    wait_for(job.done, timeout=5, what="the compare job to end")


def test_a_column_that_cannot_start_says_why_and_the_other_runs(app, lb, connect) -> None:
    result = connect(app.url).predict(**compare_args(template_2="nope"), api_name="/compare")
    assert result[C2_STATUS].startswith("⚠ unknown template 'nope'")
    assert len(lb.requests) == 1


def test_each_compare_column_takes_its_reasoning_effort(app, lb, connect) -> None:
    result = connect(app.url).predict(**compare_args(model_1="demo:assistant", effort_1="high", effort_2="low"),
                                      api_name="/compare")
    assert result[C1_STATUS] == "⚠ demo:assistant is not a reasoning model: leave the reasoning effort unset"
    assert result[C2_STATUS].startswith("Done")
    assert [r.body.get("reasoning_effort") for r in lb.requests] == ["low"]  # asked of the provider


# -- evaluate -----------------------------------------------------------------------------------
def test_evaluate_shows_mixed_results_and_exports_matching_rows(app, lb, connect) -> None:
    client = connect(app.url)
    job = client.submit(template="greet", dataset="greet.jsonl", models=["local:m"], concurrency=2,
                        api_name="/evaluate")
    result = job.result(timeout=30)
    assert strings(job.outputs(), E_PROGRESS)[0].startswith("Running · 0/3 done")
    assert result[E_PROGRESS].startswith("Done · 3/3 · 2 passed · 1 failed")
    assert result[E_SUMMARY].startswith(f"**greet @ {greet_hash(app)}**")
    table = result[E_TABLE]
    assert table["headers"] == ["case", "local:m"]
    marks = {row[0]: row[1] for row in table["data"]}
    assert list(marks) == ["mentions-loopback", "mentions-zebras", "mentions-streaming"]
    assert marks["mentions-loopback"].startswith("✓ ") and marks["mentions-streaming"].startswith("✓ ")
    assert marks["mentions-zebras"].startswith("✗ expected to contain 'zebra'")
    assert all("tok · $" in mark for mark in marks.values())

    with httpx.Client(timeout=10) as http:
        exported = list(csv.DictReader(io.StringIO(http.get(result[E_CSV]["value"]["url"]).content.decode("utf-8-sig"))))
        lines = http.get(result[E_JSONL]["value"]["url"]).text.splitlines()
    assert [(r["case_id"], r["status"]) for r in exported] == [
        ("mentions-loopback", "passed"), ("mentions-zebras", "failed"), ("mentions-streaming", "passed")
    ]
    assert {r["template_hash"] for r in exported} == {greet_hash(app)}
    assert [json.loads(line)["case_id"] for line in lines] == [r["case_id"] for r in exported]
    assert json.loads(lines[0])["output"] == DEFAULT_TEXT

    failures = client.predict(failures_only=True, api_name="/evaluate_filter")
    assert [row[0] for row in failures["data"]] == ["mentions-zebras"]


def test_a_bad_dataset_lists_every_problem_with_its_line(app, lb, connect, tmp_path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("id,who,colour\na,Ada,red\nb,,blue\nc,Cy,\n", encoding="utf-8")
    result = connect(app.url).predict(template="ask", upload=handle_file(str(bad)), api_name="/evaluate")
    lines = result[E_PROGRESS].splitlines()
    assert lines[0] == "⚠ The dataset bad.csv cannot be used (5 problems):"
    assert [line.split(":")[1] for line in lines[1:]] == ["1", "1", "2", "3", "4"]  # file:line, in order
    assert lines[1].startswith("- bad.csv:1: unknown column 'who'")
    assert lines[2].startswith("- bad.csv:1: unknown column 'colour'")
    assert lines[3] == "- bad.csv:2: missing required variable 'question'"
    assert lb.requests == []


def test_an_unknown_shipped_dataset_is_refused(app, lb, connect) -> None:
    result = connect(app.url).predict(template="greet", dataset="../../etc/passwd", api_name="/evaluate")
    assert result[E_PROGRESS] == "⚠ no dataset '../../etc/passwd' in prompts/datasets"
    assert lb.requests == []


def test_evaluation_results_and_exports_hold_no_secret(make_app, lb, connect) -> None:
    key = "endpoint-DO-NOT-LEAK-4242"
    app = make_app(endpoints={"local": {"base_url": lb.openai_base_url, "models": ["m"], "api_key": key}})
    lb.enqueue(*(Scenario(kind="http_error", status=400, error_message=f"bad key {key}") for _ in range(3)))
    result = connect(app.url).predict(template="greet", dataset="greet.jsonl", concurrency=1, api_name="/evaluate")
    assert result[E_PROGRESS].startswith("Done · 3/3 · 0 passed · 3 failed")
    assert all(row[1].startswith("! ") and "***" in row[1] for row in result[E_TABLE]["data"])
    with httpx.Client(timeout=10) as http:
        exported = http.get(result[E_CSV]["value"]["url"]).text + http.get(result[E_JSONL]["value"]["url"]).text
    assert key not in str(result) and key not in exported and "***" in exported


def test_evaluate_stop_cancels_the_runs_in_flight(app, lb, connect) -> None:
    lb.enqueue(SLOW, SLOW, SLOW)
    client = connect(app.url)
    job = client.submit(template="greet", dataset="greet.jsonl", models=["local:m"], concurrency=2,
                        api_name="/evaluate")
    lb.wait_for_requests(2, timeout=10)
    wait_for(lambda: all(r.deltas_sent > 0 for r in lb.requests[:2]), what="two runs to stream")
    result = client.predict(api_name="/evaluate_stop")
    for index in (0, 1):
        record = lb.wait_closed(index, timeout=5)
        assert record.closed_by_client and record.deltas_sent < 300
    assert len(lb.requests) == 2  # the third case never started
    assert result[E_PROGRESS].startswith("Stopped · 0/3 done")
    assert [row[1] for row in result[E_TABLE]["data"]] == ["■ not run"] * 3
    wait_for(job.done, timeout=5, what="the evaluation job to end")


def test_a_compare_column_shows_template_errors_relative_to_the_prompts_directory(app, lb, connect) -> None:
    result = connect(app.url).predict(**compare_args(variables={"who": "Ada"}), api_name="/compare")
    assert result[C2_STATUS] == "⚠ ask.md:4: missing required variable 'question'"
    assert str(app.prompts) not in str(result)


# -- files from the client ----------------------------------------------------------------------
def call_raw(url: str, api: str, data: list[Any]) -> str:
    """A raw Gradio API call (what any HTTP client can send, no upload first): the whole event stream."""
    with httpx.Client(base_url=url, timeout=20) as http:
        event = http.post(f"/gradio_api/call/{api}", json={"data": data}).json()["event_id"]
        return http.get(f"/gradio_api/call/{api}/{event}").text


@pytest.mark.parametrize("exists", [True, False])
def test_evaluate_refuses_a_server_path_that_was_not_uploaded(app, lb, tmp_path, exists) -> None:
    secret = tmp_path / "private" / "secret.csv"
    secret.parent.mkdir()
    if exists:
        secret.write_text("id,who\nTOPSECRET-ROW,TOPSECRET-NAME\n", encoding="utf-8")
    payload = {"path": str(secret), "meta": {"_type": "gradio.FileData"}, "orig_name": "secret.csv"}
    stream = call_raw(app.url, "evaluate", ["greet", None, payload, ["local:m"], 1, False])
    last = json.loads(stream.strip().split("data: ")[-1])
    assert last[E_PROGRESS] == "⚠ upload the dataset file through the page (or gradio_client's handle_file)"
    assert "TOPSECRET" not in stream and "secret.csv" not in stream and str(tmp_path) not in stream
    assert lb.requests == []  # nothing ran


def test_evaluate_refuses_a_symlink_out_of_the_upload_folder(app, lb, tmp_path) -> None:
    from gradio.utils import get_upload_folder

    secret = tmp_path / "secret.csv"
    secret.write_text("id,who\nTOPSECRET-ROW,TOPSECRET-NAME\n", encoding="utf-8")
    folder = Path(get_upload_folder()) / f"llmtool-test-{tmp_path.name}"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "innocent.csv"
    link.unlink(missing_ok=True)
    link.symlink_to(secret)
    try:
        payload = {"path": str(link), "meta": {"_type": "gradio.FileData"}}
        stream = call_raw(app.url, "evaluate", ["greet", None, payload, ["local:m"], 1, False])
    finally:
        link.unlink()
        folder.rmdir()
    assert "TOPSECRET" not in stream and "upload the dataset file through the page" in stream
    assert lb.requests == []


def test_two_evaluations_at_once_export_files_of_their_own(app, lb, connect) -> None:
    lb.enqueue(*(Scenario(text=DEFAULT_TEXT) for _ in range(6)))
    jobs = [connect(app.url).submit(template="greet", dataset="greet.jsonl", models=["local:m"], concurrency=3,
                                    api_name="/evaluate") for _ in range(2)]
    results = [job.result(timeout=30) for job in jobs]
    assert all(r[E_PROGRESS].startswith("Done · 3/3") for r in results)
    exported = sorted(p.name for p in app.context.export_dir().iterdir())
    assert len(exported) == 4, exported  # same template, version and second: still a file each
