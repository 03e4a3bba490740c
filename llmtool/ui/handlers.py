"""The chat tab's handlers: thin `async def` generators over LLMService.

Each streaming handler starts a run, reads its events in coalesced batches (at most one page
update per `ui.update_interval`, the last never held back) and yields page updates. Whatever ends
the handler — the run finishing, Stop, Gradio cancelling the event, the tab closing — its
`finally` cancels the run, so the provider connection closes with it.

Every handler returns the same outputs, in the order of `Update.outputs()` (wired in `blocks.py`).
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, AsyncIterator

import gradio as gr

from llmtool.errors import InvalidRequestError, UsageError
from llmtool.events import RunEvent
from llmtool.service import Run, RunRequest
from llmtool.ui.coalesce import coalesce
from llmtool.ui.context import UIContext
from llmtool.ui.status import RunProgress, escape_markdown
from llmtool.ui.transcript import Turn, chat_messages, provider_messages, redacted, turn_from_progress

log = logging.getLogger(__name__)

TICK = 0.5  # refresh the clock in the status line this often while no event arrives
STOP_GRACE = 2.0  # how long Stop waits for the streaming handler to finish its last update


@dataclass
class Update:
    """One page update; None leaves that output as it is."""

    chat: list[dict] | None = None
    turns: list[Turn] | None = None
    run_id: str | None = None  # "" once no run is streaming
    status: str | None = None
    validation: str | None = None
    prompt: str | None = None
    running: bool | None = None

    def outputs(self) -> tuple[Any, ...]:
        def value(v: Any) -> Any:
            return gr.skip() if v is None else v

        controls = (gr.skip(), gr.skip())
        if self.running is not None:
            controls = (gr.update(visible=not self.running), gr.update(visible=self.running))
        return (
            value(self.chat),
            value(self.turns),
            value(self.run_id),
            value(self.status),
            value(self.validation),
            value(self.prompt),
            *controls,
        )


def build_request(prompt: str, history: list[Turn], options: dict[str, Any]) -> RunRequest:
    """The run request for a prompt after `history`; an InvalidRequestError if the input is wrong."""
    words = [w.strip() for w in (options.get("forbidden_words") or "").split(",") if w.strip()]
    validation = {
        "mode": options.get("mode") or "stream",
        "json": bool(options.get("must_be_json")),
        "max_length": int(options["max_length"]) if options.get("max_length") else None,
        "forbidden_words": words,
    }
    return RunRequest.parse({
        "model": options.get("model") or None,
        "messages": provider_messages(history),
        "prompt": prompt or "",
        "system": (options.get("system") or "").strip() or None,
        "temperature": _temperature(options.get("temperature")),
        "max_output_tokens": int(options["max_output_tokens"]) if options.get("max_output_tokens") else None,
        "validation": validation,
    })


class ChatHandlers:
    def __init__(self, context: UIContext) -> None:
        self.context = context

    # -- events ---------------------------------------------------------------------------------
    async def send(
        self,
        prompt: str,
        model: str | None = None,
        system: str | None = None,
        temperature: str | float | None = None,
        max_output_tokens: float | None = None,
        mode: str = "stream",
        must_be_json: bool = False,
        max_length: float | None = None,
        forbidden_words: str | None = None,
        turns: list[Turn] | None = None,
    ) -> AsyncIterator[tuple[Any, ...]]:
        """Send the prompt; stream the answer into the chat."""
        options = _options(model, system, temperature, max_output_tokens, mode, must_be_json,
                           max_length, forbidden_words)
        async for outputs in self._converse(prompt, list(turns or []), options, clear_prompt=True):
            yield outputs

    async def regenerate(
        self,
        model: str | None = None,
        system: str | None = None,
        temperature: str | float | None = None,
        max_output_tokens: float | None = None,
        mode: str = "stream",
        must_be_json: bool = False,
        max_length: float | None = None,
        forbidden_words: str | None = None,
        turns: list[Turn] | None = None,
    ) -> AsyncIterator[tuple[Any, ...]]:
        """Answer the last prompt again, replacing the last answer."""
        turns = list(turns or [])
        if not turns:
            gr.Warning("There is no answer to regenerate yet.")
            yield Update(status="Nothing to regenerate yet: send a prompt first.").outputs()
            return
        options = _options(model, system, temperature, max_output_tokens, mode, must_be_json,
                           max_length, forbidden_words)
        async for outputs in self._converse(turns[-1].user, turns[:-1], options, clear_prompt=False):
            yield outputs

    async def stop(self, run_id: str | None = None, turns: list[Turn] | None = None) -> tuple[Any, ...]:
        """Stop the streaming run: the provider connection closes, the partial answer stays."""
        service = self.context.service
        run = service.get(run_id) if run_id else None
        if run is None:
            return Update(run_id="", running=False).outputs()
        run.cancel()
        await run.wait()
        # Let the streaming handler (stopped by Gradio or ending on its own) send its last update
        # first, so this final one is not overwritten by an older one.
        await self.context.wait_stream_ended(run.id, STOP_GRACE)
        turns = list(turns or [])
        if not turns or turns[-1].outcome not in ("streaming", "validating"):
            return Update(run_id="", running=False).outputs()  # the answer had already ended
        progress = RunProgress.replay(run.model.id, run.log, buffered=_buffered(run))
        return self._render(run, progress, turns[:-1], _prompt_of(run), final=True).outputs()

    async def clear(self, run_id: str | None = None) -> tuple[Any, ...]:
        """Forget the conversation (stopping a run still streaming)."""
        run = self.context.service.get(run_id) if run_id else None
        if run is not None and run.cancel():
            await run.wait()
        return Update(chat=[], turns=[], run_id="", status="", validation="", running=False).outputs()

    # -- the streaming loop ---------------------------------------------------------------------
    async def _converse(
        self, prompt: str, history: list[Turn], options: dict[str, Any], clear_prompt: bool
    ) -> AsyncIterator[tuple[Any, ...]]:
        try:
            request = build_request(prompt, history, options)
            run = self.context.service.start(request)
        except UsageError as error:
            message = self.context.redact(error.message)
            gr.Warning(message)
            yield Update(status=escape_markdown(f"⚠ {message}"), running=False).outputs()
            return
        except Exception:  # a bug of ours: say so on the page, keep the traceback in the log
            log.exception("could not start a run")
            yield Update(status="⚠ llmtool failed unexpectedly; the server log has the details.",
                         running=False).outputs()
            return

        loop = asyncio.get_running_loop()
        started = loop.time()
        progress = RunProgress(model=run.model.id, buffered=_buffered(run))
        self.context.stream_started(run.id)
        try:
            first = self._render(run, progress, history, prompt, final=False)
            first.run_id, first.running = run.id, True
            if clear_prompt:
                first.prompt = ""
            yield first.outputs()
            batches = self._batches(run)
            async with aclosing(batches):
                async for batch in batches:
                    for event in batch:
                        progress.apply(event)
                    yield self._render(
                        run, progress, history, prompt, final=progress.done, elapsed=loop.time() - started
                    ).outputs()
        finally:
            run.cancel()  # no-op once the run ended; otherwise closes the provider connection
            self.context.stream_ended(run.id)

    def _batches(self, run: Run) -> AsyncIterator[list[RunEvent]]:
        interval = self.context.update_interval
        if interval <= 0:  # one page update per event: the slow baseline the benchmark compares to
            return _one_by_one(run.events())
        return coalesce(run.events(), interval, tick=TICK)

    def _render(
        self,
        run: Run,
        progress: RunProgress,
        history: list[Turn],
        prompt: str,
        final: bool,
        elapsed: float = 0.0,
    ) -> Update:
        redact = self.context.redact
        turn = redacted(turn_from_progress(prompt, progress), redact)
        turns = [*history, turn]
        update = Update(
            chat=chat_messages(turns),
            turns=turns,
            status=escape_markdown(redact(progress.status_line(elapsed))),
            validation=escape_markdown(redact(progress.validation_line())),
        )
        if final:
            update.run_id, update.running = "", False
        return update


def _options(*values: Any) -> dict[str, Any]:
    """The settings panel's values by name (the order of `ChatComponents.options`)."""
    names = ("model", "system", "temperature", "max_output_tokens", "mode", "must_be_json",
             "max_length", "forbidden_words")
    return dict(zip(names, values, strict=True))


async def _one_by_one(events: AsyncIterator[RunEvent]) -> AsyncIterator[list[RunEvent]]:
    async for event in events:
        yield [event]


def _temperature(value: str | float | None) -> float | None:
    """The temperature field: empty means the model's default."""
    if value is None or isinstance(value, (int, float)):
        return value
    if not value.strip():
        return None
    try:
        return float(value.strip().replace(",", "."))
    except ValueError:
        raise InvalidRequestError(f"temperature must be a number from 0 to 2, got {value.strip()!r}") from None


def _buffered(run: Run) -> bool:
    return run.request.validation.mode == "buffer"


def _prompt_of(run: Run) -> str:
    return run.request.messages[-1].content
