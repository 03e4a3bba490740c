"""The conversation of one browser session: turns in, Chatbot messages and provider messages out.

A `Turn` is one user prompt and what came back. The page shows every turn, with a mark on answers
that were stopped, failed or withheld; the provider is sent only what the model actually said,
never our marks nor its thoughts.

A reasoning model's thoughts (`Thought`) are shown above its answer, collapsed, with how long it
thought: in the Chatbot as a thought message ("Thinking… 12 s" with a spinner while it thinks,
"Thought for 14 s" once its answer begins), in Markdown panes as a `<details>` block.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from llmtool.events import Failed
from llmtool.providers.base import ChatMessage
from llmtool.ui.status import RunProgress, escape_markdown, seconds

Outcome = Literal["streaming", "validating", "completed", "stopped", "failed", "withheld", "interrupted",
                  "elsewhere"]
WAITING = "…"
VALIDATING = "_Validating… the answer appears once it passes its rules._"
STOPPED = "Stopped — partial answer."
INTERRUPTED = "⚠ Interrupted: the server stopped while this answer was written; the text so far is kept."
# A restored run that another server process is still writing: this page cannot follow it.
ELSEWHERE = "⏳ Still being written by another server process: reload the page later to see the rest."
SILENT = "_The model did not show its thoughts._"
# Gradio opens a "pending" thought (with a spinner and a short scrolling preview) and closes it
# once it is "done": the thoughts stream in view while there is no answer to read yet.
THINKING_STATUS = "pending"


@dataclass(frozen=True)
class Thought:
    """What a reasoning model showed of its thinking (may be empty: it thought silently)."""

    text: str = ""
    seconds: float | None = None  # how long it thought (so far, while `done` is False)
    done: bool = True

    @property
    def title(self) -> str:
        if not self.done:
            return f"Thinking… {seconds(self.seconds)}" if self.seconds is not None else "Thinking…"
        return f"Thought for {seconds(self.seconds)}" if self.seconds is not None else "Thought"


@dataclass(frozen=True)
class Turn:
    user: str
    answer: str = ""
    outcome: Outcome = "streaming"
    note: str = ""  # why it failed / which rules it broke, already redacted
    withheld: str = ""  # buffer mode: the answer that failed validation
    template: str | None = None  # the template `user` was rendered from, so Regenerate can render it again
    variables: dict[str, Any] | None = None  # …with these field values
    conversation: str = ""  # the kept conversation it belongs to (its runs' `conversation_id`)
    thought: Thought | None = None  # a reasoning model's thinking, shown above the answer


def turn_from_progress(user: str, progress: RunProgress, elapsed: float = 0.0) -> Turn:
    """The turn as the page should show it now (`elapsed`: the run's clock, for the thinking time)."""
    return replace(_answer_turn(user, progress), thought=thought_of(progress, elapsed))


def thought_of(progress: RunProgress, elapsed: float = 0.0) -> Thought | None:
    if not progress.thinking:
        return None
    return Thought(progress.reasoning, progress.thinking_seconds(elapsed), progress.thinking_done)


def _answer_turn(user: str, progress: RunProgress) -> Turn:
    if progress.phase == "done":
        if progress.withheld_text:
            problems = progress.validated.problems if progress.validated else []
            return Turn(user, "", "withheld", "; ".join(problems), progress.withheld_text)
        return Turn(user, progress.text, "completed")
    if progress.phase == "stopped":
        return Turn(user, progress.text, "stopped")
    if progress.phase == "failed":
        message = progress.terminal.message if isinstance(progress.terminal, Failed) else ""
        return Turn(user, progress.text, "failed", message)
    if progress.buffered:
        return Turn(user, "", "validating")
    return Turn(user, progress.text, "streaming")


def redacted(turn: Turn, redact: Callable[[str], str]) -> Turn:
    thought = turn.thought and replace(turn.thought, text=redact(turn.thought.text))
    return replace(turn, answer=redact(turn.answer), note=redact(turn.note), withheld=redact(turn.withheld),
                   thought=thought)


def chat_messages(turns: list[Turn]) -> list[dict]:
    """The Chatbot value (messages format) for these turns."""
    messages: list[dict] = []
    for turn in turns:
        messages.append({"role": "user", "content": turn.user})
        if turn.thought is not None:
            messages.append(thought_message(turn.thought))
        messages.append({"role": "assistant", "content": answer_markdown(turn)})
        if turn.withheld:
            messages.append({
                "role": "assistant",
                "content": turn.withheld,
                "metadata": {"title": "Withheld answer (failed validation)", "status": "done"},
            })
    return messages


def thought_message(thought: Thought) -> dict:
    """The Chatbot's collapsible thought message, above the answer."""
    return {
        "role": "assistant",
        "content": thought.text or SILENT,
        "metadata": {"title": thought.title, "status": "done" if thought.done else THINKING_STATUS},
    }


def thought_details(thought: Thought | None) -> str:
    """The thought as a `<details>` block for a Markdown pane (sanitized by the component like the
    answer), to put above the answer; "" without one. Collapsed once the model is done thinking;
    open while it thinks, as the Chatbot shows a pending thought (a pane re-rendered every update
    could not keep a reader's click anyway)."""
    if thought is None:
        return ""
    # The thoughts stay Markdown inside the block (blank lines around them); they cannot end it early.
    text = (thought.text or SILENT).replace("</details", "&lt;/details")
    fence = "\n```" if text.count("```") % 2 else ""
    state = "" if thought.done else " open"
    return (f'<details class="thought"{state}><summary>{escape_markdown(thought.title)}</summary>\n\n'
            f"{text}{fence}\n\n</details>\n\n")


def answer_markdown(turn: Turn) -> str:
    if turn.outcome == "streaming":
        return turn.answer or WAITING
    if turn.outcome == "validating":
        return VALIDATING
    if turn.outcome == "stopped":
        return _with_mark(turn.answer, STOPPED)
    if turn.outcome == "failed":
        return _with_mark(turn.answer, f"⚠ Failed: {escape_markdown(turn.note)}")
    if turn.outcome == "interrupted":
        return _with_mark(turn.answer, INTERRUPTED)
    if turn.outcome == "elsewhere":
        return _with_mark(turn.answer, ELSEWHERE)
    if turn.outcome == "withheld":
        return f"_✗ Withheld: the answer failed validation — {escape_markdown(turn.note)}_"
    return turn.answer


def _with_mark(answer: str, mark: str) -> str:
    # A blank line ends any list or table the partial answer left open; a code block needs its fence.
    if not answer:
        return f"_{mark}_"
    fence = "\n```" if answer.count("```") % 2 else ""
    return f"{answer}{fence}\n\n_{mark}_"


def provider_messages(turns: list[Turn]) -> list[ChatMessage]:
    """The conversation so far as the provider should see it: only what the model really said."""
    messages: list[ChatMessage] = []
    for turn in turns:
        if turn.outcome in ("streaming", "validating", "withheld", "elsewhere") or not turn.answer.strip():
            continue  # no answer to pair the prompt with: leave the exchange out
        messages.append(ChatMessage(role="user", content=turn.user))
        messages.append(ChatMessage(role="assistant", content=turn.answer))
    return messages
