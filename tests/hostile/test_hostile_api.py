"""Bad input through the running app's HTTP APIs: every case gets a sentence naming what was wrong and
what is allowed, never a blank Error, a bare 500 or a traceback in the server log; a lone surrogate is
repaired before a provider sees it and the run still ends; other users are answered while a slow
bad input is handled.

The app is served on 127.0.0.1 with the loopback server as OpenAI and the offline demo model; the
Gradio endpoints are called as a script would (`/gradio_api/call/NAME`, then its event stream), the
raw protocol (`/gradio_api/queue/join`, `/run/…`) and gradio_client, the JSON API and /lite too.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import ValidationError

from llmtool.loopback import LoopbackServer
from llmtool.settings import load_settings
from llmtool.web.app import create_app
from llmtool.web.serve import BackgroundServer
from tests.helpers import log_in
from tests.web.support import make_settings, wait_status

pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")  # pandas 3 deprecations, not ours

REPO_PROMPTS = Path(__file__).resolve().parents[2] / "prompts"
CHAT = ["hi", "demo:echo", "", "", 0, "stream", False, 0, ""]  # /chat's values (its state left out)
COMPARE = [2, "summarise", "demo:echo", "summarise", "demo:echo", "", "", "", "", {"text": "x"}, *[""] * 4]
EVALUATE = ["classify", "classify.csv", None, [], 2, False]
HISTORY = ["(any)", "(any)", "(any)", "", "", "", ""]


@pytest.fixture(scope="module")
def served(loopback: LoopbackServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    settings = make_settings(loopback, tmp_path_factory.mktemp("hostile-api"), prompts=REPO_PROMPTS,
                             default_model="demo:echo")
    with BackgroundServer(create_app(settings)) as server:
        yield server


@pytest.fixture
def http(served: BackgroundServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=20) as client:
        yield client


@pytest.fixture
def server_log(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> Iterator[ServerLog]:
    """What the server logs during the test (the records, and what went to stderr: Gradio and uvicorn
    print their tracebacks there); after the test, it must hold no traceback."""
    caplog.set_level(logging.INFO)
    log = ServerLog(caplog, capfd)
    yield log
    log.assert_no_traceback()


@dataclass
class ServerLog:
    caplog: pytest.LogCaptureFixture
    capfd: pytest.CaptureFixture[str]

    def lines(self, containing: str) -> list[str]:
        return [r.getMessage() for r in self.caplog.records if containing in r.getMessage()]

    def assert_no_traceback(self) -> None:
        out, err = self.capfd.readouterr()
        assert "Traceback" not in out + err, err[-3000:]
        assert [r.getMessage() for r in self.caplog.records if r.exc_info] == []


# -- calling the app --------------------------------------------------------------------------------
@dataclass
class Answer:
    status: int  # of the request: 200 once the event was accepted
    event: str  # how its stream ended ("complete", "error"); "" when the request was refused
    text: str  # every string of the answer (the refusal, or the last outputs), one per line

    @property
    def refused(self) -> bool:
        return 400 <= self.status < 500


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def call(http: httpx.Client, api_name: str, data: Any, path: str | None = None) -> Answer:
    """POST `data` (encoded by json.dumps: NaN and Infinity as JS literals, a lone surrogate as its
    escape, just as a script could send them) to /gradio_api/call/NAME; follow its stream to the end."""
    body = json.dumps({"data": data} if path is None else data)
    posted = http.post(path or f"/gradio_api/call/{api_name}", content=body,
                       headers={"content-type": "application/json"})
    if posted.status_code != 200 or path is not None:
        return Answer(posted.status_code, "", "\n".join(strings(_json(posted))))
    event, last = "", None
    with http.stream("GET", f"/gradio_api/call/{api_name}/{posted.json()['event_id']}") as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                event = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                last = json.loads(line.removeprefix("data:"))
    return Answer(200, event, "\n".join(strings(last)))


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def chat(**changes: Any) -> list[Any]:
    """/chat's values with some changed, by index."""
    values = list(CHAT)
    for index, value in changes.items():
        values[int(index.removeprefix("v"))] = value
    return values


def values(base: list[Any], **changes: Any) -> list[Any]:
    changed = list(base)
    for index, value in changes.items():
        changed[int(index.removeprefix("v"))] = value
    return changed


NAN, INF = float("nan"), float("inf")
DEEP: Any = []
for _ in range(100):
    DEEP = [DEEP]

# name → (endpoint, data, refused at the door (a 4xx) or answered, what the answer says)
CASES: dict[str, tuple[str, Any, bool, str]] = {
    # Chat: the cases
    "max tokens not a number": ("chat", chat(v4="abc"), True,
                                "/chat: max_output_tokens must be a number of at least 0 (0: the model's default); "
                                "got 'abc'"),
    "max tokens NaN": ("chat", chat(v4=NAN), True, "max_output_tokens must be a finite number, not NaN"),
    "max length not a number": ("chat", chat(v7="xyz"), True,
                                "max_length (“Max length (characters)”) must be a number of at least 0 (0: no limit); "
                                "got 'xyz'"),
    "max length Infinity": ("chat", chat(v7=INF), True, "max_length (“Max length (characters)”) must be a finite "
                                                       "number, not Infinity"),
    "temperature NaN": ("chat", chat(v3="NaN"), False,
                        "⚠ temperature must be a number from 0 to 2 (empty: the model's default); got NaN"),
    "temperature Infinity": ("chat", chat(v3="Infinity"), False, "temperature must be a number from 0 to 2 "
                                                                 "(empty: the model's default); got Infinity"),
    "temperature 1e400 (a JSON number past float)": ("chat", chat(v3=INF), True,
                                                     "temperature must be a finite number, not Infinity"),
    "temperature warm": ("chat", chat(v3="warm"), False, "temperature must be a number from 0 to 2"),
    "too few values": ("chat", ["hi"], True, "/chat takes 9 values (prompt, model, system, temperature, "
                                             "max_output_tokens, mode, must_be_json, max_length, forbidden_words), "
                                             "or 10 with the session's state values as null; got 1"),
    "too many values": ("chat", [*CHAT, None, "extra"], True, "/chat takes 9 values"),
    "data not a list": ("chat", "hi", True, "data must be the list of the values of /chat; got 'hi'"),
    # Chat: the same classes on its other inputs
    "max tokens too many": ("chat", chat(v4=1e30), False,
                            "max output tokens must be a whole number from 1 to 1,000,000 (0: the model's default)"),
    "max tokens negative": ("chat", chat(v4=-5), True, "max_output_tokens must be a number of at least 0"),
    "mode not offered": ("chat", chat(v5="weird"), True, "mode (“Output mode”) must be one of stream, buffer; "
                                                         "got 'weird'"),
    "must be JSON as text": ("chat", chat(v6="yes"), True, "must_be_json (“Answer must be JSON”) must be true or "
                                                           "false; got 'yes'"),
    "prompt a list": ("chat", chat(v0=["hi"]), True, "prompt must be text; got a list"),
    "model an object": ("chat", chat(v1={"a": 1}), True, "model must be one choice (text); got an object"),
    "forbidden words a number list": ("chat", chat(v8=[1, 2]), True, "forbidden_words (“Forbidden words "
                                                                      "(comma-separated)”) must be text; got a list"),
    "state nested 100 deep": ("chat", [*CHAT, DEEP], True, "turns is nested more than 64 levels deep"),
    "an unknown model": ("chat", chat(v1="nosuch:model"), False, "unknown provider 'nosuch'"),
    "an empty prompt": ("chat", chat(v0="   "), False, "the prompt is empty"),
    "regenerate: max tokens not a number": ("regenerate", [*CHAT[1:4], "abc", *CHAT[5:]], True,
                                            "/regenerate: max_output_tokens must be a number of at least 0"),
    # templates
    "run_template: variables as text": ("run_template", ["summarise", "abc", *CHAT[1:]], False,
                                        "variables must be a JSON object of names to values"),
    "run_template: NaN in variables": ("run_template", ["summarise", {"text": "x", "n": NAN}, *CHAT[1:]], True,
                                       "variables must hold finite numbers only, not NaN"),
    "run_template: variables nested 100 deep": ("run_template", ["summarise", {"text": DEEP}, *CHAT[1:]], True,
                                                "variables is nested more than 64 levels deep"),
    "preview: template an object": ("preview", [{"name": "summarise"}, {}], True,
                                    "template must be one choice (text); got an object"),
    "preview: variables a list": ("preview", ["summarise", [1, 2]], False, "variables must be a JSON object"),
    # Compare
    "compare: 7 columns": ("compare", values(COMPARE, v0=7), True, "/compare: columns must be one of 2, 3, 4; got 7"),
    "compare: columns as text": ("compare", values(COMPARE, v0="2"), True, "columns must be one of 2, 3, 4; got '2'"),
    "compare: effort not offered": ("compare", values(COMPARE, v10="bogus"), True,
                                    "effort_1 (“Reasoning effort 1”) must be one of model default, none"),
    "compare: variables as text": ("compare", values(COMPARE, v9="abc"), False,
                                   "variables must be a JSON object of names to values"),
    # Evaluate
    "evaluate: concurrency abc": ("evaluate", values(EVALUATE, v4="abc"), True,
                                  "/evaluate: concurrency (“Runs at once”) must be a number from 1 to 16; got 'abc'"),
    "evaluate: concurrency 0": ("evaluate", values(EVALUATE, v4=0), True, "must be a number from 1 to 16; got 0"),
    "evaluate: concurrency NaN": ("evaluate", values(EVALUATE, v4=NAN), True,
                                  "concurrency (“Runs at once”) must be a finite number, not NaN"),
    "evaluate: upload as a string": ("evaluate", values(EVALUATE, v1=None, v2="data.csv"), True,
                                     "must be a file (upload it through the page, or send gradio_client's "
                                     "handle_file(path)); got 'data.csv'"),
    "evaluate: a server path as the upload": ("evaluate", values(EVALUATE, v1=None, v2={
        "path": "/etc/hosts.csv", "meta": {"_type": "gradio.FileData"}}), False,
        "upload the dataset file through the page (or gradio_client's handle_file)"),
    "evaluate: models as text": ("evaluate", values(EVALUATE, v3="demo:echo"), True,
                                 "models must be a list of choices; got 'demo:echo'"),
    "evaluate: a dataset path": ("evaluate", values(EVALUATE, v1="../../etc/passwd"), False,
                                 "no dataset '../../etc/passwd' in prompts/datasets"),
    "evaluate_filter: text for a checkbox": ("evaluate_filter", ["yes", False], True,
                                             "failures_only must be true or false; got 'yes'"),
    # History
    "history: a month 13": ("history", values(HISTORY, v4="2024-13-45"), False,
                            "Date from: '2024-13-45' is not a date; write it as YYYY-MM-DD"),
    "history: a status not offered": ("history", values(HISTORY, v0="bogus"), True,
                                      "status must be one of (any), running, completed, stopped, failed, "
                                      "interrupted; got 'bogus'"),
    "history: search an object": ("history", values(HISTORY, v6={"a": 1}), True,
                                  "search (“Search prompts and answers”) must be text; got an object"),
    "history_delete: what is bogus": ("history_delete", ["bogus", "x"], False,
                                      "what to delete must be run or conversation; got 'bogus'"),
    "history_export: xml": ("history_export", ["xml"], False, "the export format must be jsonl or csv; got 'xml'"),
    "history_open: an id of 100,000 characters": ("history_open", ["x" * 100_000], False,
                                                  "run " + "x" * 40 + "… not found"),
    # endpoints and bodies
    "an unknown endpoint": ("nosuch", [], True, "there is no endpoint /nosuch; the endpoints are /chat, /regenerate"),
}

RAW: dict[str, tuple[str, Any, int, str]] = {
    "queue/join: an unknown fn_index": ("/gradio_api/queue/join",
                                        {"data": [], "fn_index": 9999, "session_hash": "h1"}, 404,
                                        "there is no event with fn_index 9999: see /gradio_api/info"),
    "queue/join: fn_index as text": ("/gradio_api/queue/join", {"data": [], "fn_index": "x", "session_hash": "h1"},
                                     400, "fn_index must be a whole number; got 'x'"),
    "queue/join: too few values": ("/gradio_api/queue/join", {"data": ["hi"], "fn_index": 2, "session_hash": "h1"},
                                   422, "/chat takes 9 values"),
    "run/predict: an unknown fn_index": ("/gradio_api/run/predict",
                                         {"data": [], "fn_index": 9999, "session_hash": "h1"}, 404,
                                         "there is no event with fn_index 9999"),
    "run/NAME: an unknown endpoint": ("/gradio_api/run/nosuch", {"data": []}, 404, "there is no endpoint /nosuch"),
    "call/v2: an unknown endpoint": ("/gradio_api/call/v2/nosuch", {}, 404, "there is no endpoint /nosuch"),
    "a body that is a list": ("/gradio_api/call/chat", [1, 2], 400,
                              "the body must be a JSON object with the endpoint's data; got a list"),
    "too many values in all": ("/gradio_api/call/chat", {"data": chat(v8=[0] * 30_000)}, 422,
                               "holds more than 20,000 values, the most an event takes"),
}


@pytest.mark.parametrize(("api_name", "data", "refused", "message"), CASES.values(), ids=CASES.keys())
def test_bad_input_gets_its_sentence(http: httpx.Client, server_log: ServerLog, api_name: str, data: Any,
                                     refused: bool, message: str) -> None:
    answer = call(http, api_name, data)
    assert message in answer.text, answer
    if refused:  # at the door: a 4xx, one log line
        assert answer.refused and answer.event == "", answer
        assert len(server_log.lines("refused a request to /gradio_api/call/")) == 1
    else:  # by the handler, the way its tab shows errors: in its outputs, the event completed
        assert answer.status == 200 and answer.event == "complete", answer
    assert "llmtool failed unexpectedly" not in answer.text


@pytest.mark.parametrize(("path", "body", "status", "message"), RAW.values(), ids=RAW.keys())
def test_bad_requests_get_a_4xx_with_a_sentence(http: httpx.Client, server_log: ServerLog, path: str, body: Any,
                                                status: int, message: str) -> None:
    answer = call(http, "", body, path=path)
    assert (answer.status, message in answer.text) == (status, True), answer
    assert len(server_log.lines("refused a request to")) == 1


@pytest.mark.parametrize(("body", "status", "message"), [
    ("not json", 400, "the body is not valid JSON"),
    ('{"data": ' + "[" * 100_000 + "]" * 100_000 + "}", 400, "the body is nested too deeply"),
    ('{"data": ["' + "x" * (3 * 1024 * 1024) + '"]}', 413, "the body is larger than 2 MB"),
], ids=["not JSON", "nested 100,000 deep", "3 MB"])
def test_bodies_gradio_cannot_read_get_a_4xx(http: httpx.Client, server_log: ServerLog, body: str, status: int,
                                              message: str) -> None:
    posted = http.post("/gradio_api/queue/join", content=body, headers={"content-type": "application/json"})
    assert posted.status_code == status and message in posted.json()["detail"], posted.text


def test_with_logins_the_door_answers_behind_the_login(tmp_path: Path, server_log: ServerLog) -> None:
    users = {"ann": "pw-ann-long-enough"}
    settings = load_settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'runs.db'}", default_model="demo:echo",
                             demo={"first_token_delay": 0.0, "tokens_per_second": 100_000})
    with BackgroundServer(create_app(settings, auth=lambda user, password: users.get(user) == password)) as server:
        with httpx.Client(base_url=server.url, timeout=20) as stranger:  # no session: the login answers first
            assert stranger.post("/gradio_api/call/chat", json={"data": chat(v4="abc")}).status_code == 401
        cookie = log_in(server.url, "ann", users["ann"])
        with httpx.Client(base_url=server.url, timeout=20, cookies={"llmtool_session": cookie}) as ann:
            answer = call(ann, "chat", chat(v4="abc"))
            assert answer.status == 422 and "max_output_tokens must be a number of at least 0" in answer.text
            answer = call(ann, "chat", chat(v0="hi \ud800"))
            assert answer.event == "complete" and "hi \ufffd" in answer.text


def test_gradio_client_raises_the_sentence(served: BackgroundServer, server_log: ServerLog) -> None:
    client = Client(served.url, verbose=False, download_files=False)
    try:
        with pytest.raises(ValidationError, match=r"max_output_tokens: must be a number of at least 0 "
                                                  r"\(0: the model's default\); got 'abc'"):
            client.predict("hi", "demo:echo", "", "", "abc", "stream", False, 0, "", api_name="/chat")
    finally:
        threading.Thread(target=client.close, daemon=True).start()


def test_keyword_calls_get_the_sentence_from_the_blocks(http: httpx.Client, server_log: ServerLog) -> None:
    # /call/v2 takes keyword arguments, judged past the door: an error event with the sentence, no traceback
    posted = http.post("/gradio_api/call/v2/chat", json={"prompt": "hi", "max_output_tokens": "abc"})
    assert posted.status_code == 200
    answer = http.get(f"/gradio_api/call/chat/{posted.json()['event_id']}").text
    assert "event: error" in answer
    assert "/chat: max_output_tokens must be a number of at least 0 (0: the model's default); got 'abc'" in answer
    assert len(server_log.lines("refused a value sent to /chat")) == 1


# -- lone surrogates ------------------------------------------------------------------------------
def test_a_lone_surrogate_is_repaired_before_the_provider_and_the_run_ends(
    http: httpx.Client, loopback: LoopbackServer, server_log: ServerLog
) -> None:
    loopback.reset()
    answer = call(http, "chat", chat(v0="hi \ud800 there", v1="openai:gpt-4.1-mini", v2="be \udfff brief"))
    assert answer.event == "complete" and "Done" in answer.text, answer
    assert "hi \ufffd there" in answer.text  # the prompt as the run has it
    sent = loopback.requests[-1].body
    assert "hi \ufffd there" in json.dumps(sent, ensure_ascii=False) and "be \ufffd brief" in json.dumps(
        sent, ensure_ascii=False)


def test_a_lone_surrogate_echoed_back_ends_with_a_terminal_event(http: httpx.Client, server_log: ServerLog) -> None:
    answer = call(http, "chat", chat(v0="a\ud800b\udc00c"))
    assert answer.event == "complete" and "Done" in answer.text
    assert "a\ufffdb\ufffdc" in answer.text


def test_the_json_api_repairs_lone_surrogates_and_refuses_nan(http: httpx.Client, loopback: LoopbackServer,
                                                              server_log: ServerLog) -> None:
    loopback.reset()
    posted = http.post("/api/runs", content='{"model": "openai:gpt-4.1-mini", "prompt": "hi \\ud800", '
                                            '"system": "\\udfff"}', headers={"content-type": "application/json"})
    assert posted.status_code == 202, posted.text
    done = wait_status(http, posted.json()["id"], lambda s: s["status"] != "running")
    assert done["status"] == "completed", done
    sent = json.dumps(loopback.requests[-1].body, ensure_ascii=False)
    assert "hi \ufffd" in sent and "\ud800" not in sent
    for body, message in [
        ('{"prompt": "hi", "temperature": NaN}', "NaN is not a JSON number"),
        ('{"prompt": "hi", "temperature": "NaN"}', "temperature: must be a number from 0 to 2 (unset: the model's "
                                                   "default), not NaN"),
        ('{"prompt": "hi", "max_output_tokens": "Infinity"}', "max_output_tokens: must be a whole number from 1 to "
                                                              "1,000,000"),
        ('{"prompt": "hi", "timeouts": {"total": "NaN"}}', "total must be a number of seconds"),
    ]:
        refused = http.post("/api/runs", content=body, headers={"content-type": "application/json"})
        assert refused.status_code == 422 and message in refused.json()["detail"], refused.text


# -- other users are answered meanwhile ----------------------------------------------------------
def while_running(attack: Callable[[], Any], http: httpx.Client) -> tuple[Any, float]:
    """Run `attack` in a thread while another user asks /healthz every 20 ms: (its result, the
    slowest answer the other user got)."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = attack()
        except BaseException as error:  # handed to the test
            result["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    slowest, probes = 0.0, 0
    while thread.is_alive() or probes == 0:
        started = time.perf_counter()
        assert http.get("/healthz").status_code == 200
        slowest, probes = max(slowest, time.perf_counter() - started), probes + 1
        time.sleep(0.02)
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"], slowest


HOSTILE_UPLOADS = {
    "30,000 columns": ("wide.csv", ",".join(f"c{i}" for i in range(30_000)) + "\n" + "x," * 29_999 + "x\n",
                       "the header has 30,000 columns; at most 200 allowed"),
    "JSONL nested 100,000 deep": ("deep.jsonl", '{"ticket": ' + "[" * 100_000 + "]" * 100_000 + "}\n",
                                  "the JSON is nested 100,001 levels deep; at most 32 allowed"),
}


@pytest.mark.parametrize(("name", "content", "message"), HOSTILE_UPLOADS.values(), ids=HOSTILE_UPLOADS.keys())
def test_a_hostile_dataset_upload_is_refused_while_others_are_answered(
    served: BackgroundServer, http: httpx.Client, server_log: ServerLog, tmp_path: Path, name: str, content: str,
    message: str,
) -> None:
    upload = tmp_path / name
    upload.write_text(content, encoding="utf-8")
    client = Client(served.url, verbose=False, download_files=False)
    try:
        outputs, slowest = while_running(lambda: client.predict(
            "classify", None, handle_file(str(upload)), [], 4, False, api_name="/evaluate"), http)
    finally:
        threading.Thread(target=client.close, daemon=True).start()
    assert message in outputs[0]
    assert "failed unexpectedly" not in outputs[0]
    assert slowest < 1.0
    assert len(server_log.lines("refused an evaluation")) == 1


def test_a_body_of_many_values_is_refused_while_others_are_answered(http: httpx.Client, served: BackgroundServer,
                                                                    server_log: ServerLog) -> None:
    many = json.dumps({"data": chat(v8=[[0.5] * 100] * 2_000)})  # 1.2 MB, 200,000 values
    with httpx.Client(base_url=served.url, timeout=20) as attacker:
        answer, slowest = while_running(lambda: [attacker.post(
            "/gradio_api/call/chat", content=many, headers={"content-type": "application/json"}) for _ in range(10)],
            http)
    assert all(a.status_code == 422 and "holds more than 20,000 values" in a.text for a in answer)
    assert slowest < 1.0
