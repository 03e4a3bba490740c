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


async def test_sse_lines_end_only_at_cr_or_lf_whatever_the_chunking() -> None:
    from llmtool.providers.sse_lines import sse_events

    body = ('\ufeffevent: a\r\ndata: {"x":"a\u2028b\u0085c"}\r\n\r\ndata: 1\rdata: 2\r\r: note\n'
            'data: [DONE]\n\nerror: boom\n').encode()

    class Body:
        def __init__(self, size: int) -> None:
            self.size = size

        async def aiter_bytes(self):
            for i in range(0, len(body), self.size):
                yield body[i:i + self.size]

    for size in (1, 2, 3, 7, len(body)):
        events = [event async for event in sse_events(Body(size))]  # type: ignore[arg-type]
        assert events == [("a", '{"x":"a\u2028b\u0085c"}'), (None, "1\n2"), (None, "[DONE]"), ("error", "boom")], size
