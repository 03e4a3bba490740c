"""`<think>` blocks at the start of a compatible server's content are reasoning, however cut."""

from __future__ import annotations

import pytest

from llmtool.providers.think_tags import ThinkTagSplitter

WHOLE = "<think>\nLet me see: 2 + 2.\n</think>\n\nIt is 4. <think> stays in an answer."


def split(deltas: list[str]) -> tuple[str, str]:
    splitter = ThinkTagSplitter()
    reasoning = text = ""
    for delta in deltas:
        r, t = splitter.feed(delta)
        reasoning, text = reasoning + r, text + t
    r, t = splitter.flush()
    return reasoning + r, text + t


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 100])
def test_any_cut_gives_the_same_split(size: int) -> None:
    deltas = [WHOLE[i:i + size] for i in range(0, len(WHOLE), size)]
    assert split(deltas) == ("\nLet me see: 2 + 2.\n", "It is 4. <think> stays in an answer.")


def test_content_without_a_think_block_is_all_answer() -> None:
    assert split(["<b>bold</b> and ", "<thin", "king>"]) == ("", "<b>bold</b> and <thinking>")


def test_an_unclosed_think_block_is_reasoning() -> None:
    assert split(["  <think>still going"]) == ("still going", "")
