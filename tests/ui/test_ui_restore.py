"""A kept conversation back in the chat: records → turns, the newest sibling, ownership, origins."""

from __future__ import annotations

import threading

import pytest
from gradio_client import Client

from llmtool.loopback import LoopbackServer, Scenario
from llmtool.service.conversations import current_turns
from llmtool.store import RunRecord, ValidationOutcome
from llmtool.ui.restore import REFUSED, status_of_record, turn_from_record
from llmtool.ui.transcript import INTERRUPTED, answer_markdown, provider_messages
from llmtool.web.app import create_app
from llmtool.web.serve import BackgroundServer
from tests.helpers import session_client
from tests.ui.conftest import ui_settings
from tests.ui.ui_support import answer_text, app_context, on_server_loop, wait_for

CHAT, STATUS = 0, 1


def record(**fields) -> RunRecord:
    base = dict(id="r", model="local:m", request={}, prompt="Q", conversation_id="c1", position=0,
                status="completed", text="A")
    return RunRecord(**(base | fields))


def test_each_position_shows_its_newest_sibling() -> None:
    records = [record(id="a", position=0, created_at=1), record(id="b", position=0, created_at=2),
               record(id="c", position=1, created_at=3)]
    assert [r.id for r in current_turns(records)] == ["b", "c"]


@pytest.mark.parametrize(("fields", "outcome", "shown"), [
    (dict(status="interrupted", text="half"), "interrupted", f"half\n\n_{INTERRUPTED}_"),
    (dict(status="stopped", text="half"), "stopped", "half\n\n_Stopped — partial answer._"),
    (dict(status="failed", text="", error_message="refused"), "failed", "_⚠ Failed: refused_"),
    (dict(status="running", text="so far"), "elsewhere", None),
    (dict(request={"validation": {"mode": "buffer"}}, validation=ValidationOutcome(passed=False, problems=["not JSON"])),
     "withheld", "_✗ Withheld: the answer failed validation — not JSON_"),
])
def test_a_record_becomes_the_turn_the_page_showed(fields, outcome, shown) -> None:
    turn = turn_from_record(record(template="greet", variables={"who": "Ada"}, **fields), str)
    assert (turn.outcome, turn.template, turn.variables, turn.conversation) == (outcome, "greet", {"who": "Ada"}, "c1")
    if shown is not None:
        assert answer_markdown(turn) == shown
    assert status_of_record(record(**fields)).split()[0] in ("Done", "Stopped", "Failed:", "Interrupted:", "Still")


def test_an_answer_still_written_elsewhere_is_not_sent_back_to_the_model() -> None:
    turn = turn_from_record(record(status="running", text="so far"), str)
    assert "another server process" in answer_markdown(turn)
    assert provider_messages([turn]) == []


@pytest.fixture
def logins(loopback: LoopbackServer):
    """An app with two logins (ann, bob; password "pw") and a client factory for them."""
    server = BackgroundServer(create_app(ui_settings(loopback), auth=lambda user, password: password == "pw")).start()
    clients: list[Client] = []

    def client(user: str) -> Client:
        clients.append(session_client(server.url, user, "pw"))  # logged in through /login
        return clients[-1]

    yield server, client
    for made in clients:
        threading.Thread(target=made.close, daemon=True).start()
    server.stop()


def kept_id(job_outputs) -> str:
    """The conversation id the browser would keep (the last output of the chat endpoints)."""
    return next(o[-1]["conversation_id"] for o in job_outputs if isinstance(o[-1], dict) and o[-1].get("conversation_id"))


def test_only_the_login_that_started_a_conversation_gets_it_back(logins, lb: LoopbackServer) -> None:
    server, client = logins
    lb.enqueue(Scenario(text="First answer."), Scenario(text="Second answer."))
    ann = client("ann")
    job = ann.submit(prompt="Hello", api_name="/chat")
    job.result(timeout=20)
    conversation = kept_id(job.outputs())
    ann.predict(api_name="/regenerate")  # a sibling at the same position
    context = app_context(server)
    store = context.started_service().store

    def both() -> list:
        runs = on_server_loop(context, store.conversation(conversation))
        return runs if len(runs) == 2 and all(r.ended for r in runs) else []

    first, second = wait_for(both, what="two stored siblings")
    assert (first.position, second.position) == (0, 0) and first.user == second.user == "ann"
    assert (first.source, first.text, second.text) == ("chat", "First answer.", "Second answer.")

    refused = client("bob").predict({"conversation_id": conversation}, api_name="/restore")
    assert refused[CHAT] == [] and refused[STATUS] == REFUSED.replace("*", "\\*")
    assert refused[-1] == {"conversation_id": None}  # the browser forgets it: bob starts afresh

    restored = client("ann").predict({"conversation_id": conversation}, api_name="/restore")
    assert [answer_text([m]) for m in restored[CHAT]] == ["Hello", "Second answer."]
    assert restored[STATUS].startswith("Done") and restored[-1] == {"conversation_id": conversation}


async def test_opening_a_conversation_while_the_chat_streams_is_refused_and_changes_nothing() -> None:
    import warnings

    from llmtool.settings import load_settings
    from llmtool.ui.handlers import BUSY_CHAT, ChatHandlers
    from llmtool.web.context import AppContext

    handlers = ChatHandlers(AppContext(load_settings()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gr.Warning outside a Gradio event
        updates = [u async for u in handlers.open_conversation("c0ffee", run_id="streaming1")]
    assert len(updates) == 1
    chat, turns, run_id, status = updates[0][:4]
    assert BUSY_CHAT.split(":")[0] in status
    unchanged = {"__type__": "update"}  # gr.skip(): the chat, its turns and the streaming run stay as they are
    assert chat == turns == run_id == unchanged
