"""A stored conversation's current turns and the messages that continue it."""

from llmtool.providers.base import ChatMessage
from llmtool.service.conversations import continuation, current_turns, pending
from llmtool.store import RunRecord


def turn(run_id: str, position: int, prompt: str, text: str, status: str = "completed") -> RunRecord:
    return RunRecord.model_validate({"id": run_id, "model": "demo:echo", "request": {}, "position": position,
                                     "prompt": prompt, "text": text, "status": status})


def test_the_newest_sibling_is_the_turns_answer_and_empty_or_running_turns_are_left_out() -> None:
    records = [
        turn("a", 0, "hi", "hello"),
        turn("b", 1, "joke?", "first answer"),
        turn("b2", 1, "joke?", "regenerated answer"),
        turn("c", 2, "more", "", status="failed"),
        turn("d", 3, "again", "partial", status="stopped"),
        turn("e", 4, "last", "so far", status="running"),
    ]
    turns = current_turns(records)
    assert [t.id for t in turns] == ["a", "b2", "c", "d", "e"]
    assert continuation(turns) == [
        ChatMessage(role="user", content="hi"), ChatMessage(role="assistant", content="hello"),
        ChatMessage(role="user", content="joke?"), ChatMessage(role="assistant", content="regenerated answer"),
        ChatMessage(role="user", content="again"), ChatMessage(role="assistant", content="partial"),
    ]
    found = pending(turns)
    assert found is not None and found.id == "e"
    assert pending(turns[:-1]) is None
