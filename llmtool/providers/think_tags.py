"""`<think>…</think>` at the start of a model's content (DeepSeek-R1, QwQ and others behind
OpenAI-compatible servers that do not separate reasoning): split it out of the answer, even when a
tag arrives cut across two deltas."""

from __future__ import annotations

OPEN, CLOSE = "<think>", "</think>"


class ThinkTagSplitter:
    """Feed content deltas; get (reasoning, text) pieces back. Only a think block that opens the
    content counts: `<think>` later in an answer is the answer's own text."""

    def __init__(self) -> None:
        self.state = "start"  # start → thinking → after (blank lines dropped) → answer
        self.pending = ""

    def feed(self, delta: str) -> tuple[str, str]:
        self.pending += delta
        reasoning = text = ""
        if self.state == "start":
            stripped = self.pending.lstrip()
            if not stripped:
                return "", ""
            if OPEN.startswith(stripped[: len(OPEN)]) and len(stripped) < len(OPEN):
                return "", ""  # maybe the tag, cut short: wait for more
            if stripped.startswith(OPEN):
                self.state, self.pending = "thinking", stripped[len(OPEN):]
            else:
                self.state = "answer"
        if self.state == "thinking":
            end = self.pending.find(CLOSE)
            if end < 0:
                cut = len(self.pending) - _partial_suffix(self.pending, CLOSE)
                reasoning, self.pending = self.pending[:cut], self.pending[cut:]
                return reasoning, ""
            reasoning, self.pending = self.pending[:end], self.pending[end + len(CLOSE):]
            self.state = "after"
        if self.state == "after":
            self.pending = self.pending.lstrip()
            if not self.pending:
                return reasoning, ""
            self.state = "answer"
        if self.state == "answer":
            text, self.pending = self.pending, ""
        return reasoning, text

    def flush(self) -> tuple[str, str]:
        """What is left when the stream ends: an unclosed think block is reasoning."""
        rest, self.pending = self.pending, ""
        return (rest, "") if self.state == "thinking" else ("", rest)

    @property
    def thinking(self) -> bool:
        return self.state == "thinking"


def _partial_suffix(text: str, tag: str) -> int:
    """How many trailing characters of `text` could begin `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0
