"""The chat tab's handlers: thin `async def` generators over LLMService.

Each streaming handler starts a run, reads its events in coalesced batches (at most one page
update per `ui.update_interval`, further apart while many stream: `streams.Pace`; the answer's first
text and its end never held back) and yields page updates. A run outlives its tab: a reload or a
closed tab only stops the reading, the run completes on the server and is kept (a reload follows it
again, `restore`). Stop and Clear cancel it by id, so the provider
connection closes at once.

Every run carries its `RunOrigin`: the login, the surface, and its conversation and position (a
regenerated answer is a sibling at the same position). Each turn carries its conversation id (so
the endpoints keep their inputs), and the browser keeps it too (`gr.BrowserState`): a reload, or a
restarted server, brings the conversation back (`restore`).

A reasoning model's thoughts are shown above its answer (`transcript.Thought`), "thinking (12 s)"
in the status line until its first text. The page's reasoning effort picker reaches the request
(`reasoning_effort`, after the turns: the API endpoints keep the inputs they had, the effort unset);
an effort the model does not take is refused by the service with a sentence in the status.

Every streaming handler returns the same outputs, in the order of `Update.outputs()` (wired in
`blocks.py`). With a template picked (Run template in the page, `/chat` with `template` and
`variables` for API callers), its rendered prompt becomes the user turn and its system prompt,
model, rules, output mode and timeouts apply (`Template.to_run_request`); the file is read again at
every run. The pick handlers (`pick_template`, `refresh_templates`, `preview`, `fields_changed`)
keep the template's fields, info line and preview current, offering only what the login's role may use
(`roles.Access`: its templates; without prompts of its own, no prompt box). `spend` is the line under
the status saying what the login spent of its role's budgets, refreshed after each run.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import Any, cast

import gradio as gr

from llmtool.errors import InvalidRequestError, UsageError
from llmtool.events import Completed, ReasoningDelta, RunEvent, TextDelta
from llmtool.providers.base import REASONING_EFFORTS, ReasoningEffort
from llmtool.service import Run, RunOrigin, RunRequest
from llmtool.service.requests import MAX_OUTPUT_TOKENS
from llmtool.templates import Template
from llmtool.ui import inputs
from llmtool.ui.restore import MISSING, REFUSED, load_conversation, model_price_hint, page_lines
from llmtool.ui.roles import Access, login
from llmtool.ui.status import RunProgress, escape_markdown, spend_line, with_price_hint
from llmtool.ui.streams import Pace, batches
from llmtool.ui.template_fields import FieldSpec, chosen, template_label, template_values
from llmtool.ui.template_panel import choices, describe, values_of
from llmtool.ui.transcript import Turn, chat_messages, provider_messages, redacted, turn_from_progress
from llmtool.web.context import AppContext

log = logging.getLogger(__name__)

STOP_GRACE = 2.0  # how long Stop waits for the streaming handler to finish its last update
MODEL_DEFAULT = "model default"  # the reasoning effort picker's "unset" (a template's own applies)
EFFORT_CHOICES = [MODEL_DEFAULT, *REASONING_EFFORTS]
MAX_LENGTH = 100_000_000  # characters: the max length rule's field
BUSY_CHAT = "An answer is still streaming in the chat: stop it or let it finish, then open the conversation."


async def wait_ended(*runs: Run, timeout: float | None = None) -> bool:
    """Wait for cancelled runs to end (their connections closed), at most `timeout` seconds
    (STOP_GRACE): Stop and Clear must answer even if a provider client ignores the cancellation.
    False on timeout."""
    timeout = STOP_GRACE if timeout is None else timeout
    try:
        async with asyncio.timeout(timeout):
            for run in runs:
                await run.wait()
    except TimeoutError:
        log.warning("runs still ending %.1f s after they were cancelled", timeout)
        return False
    return True


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
    conversation: str | None = None  # a conversation id for the browser to keep ("": none)

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
            gr.skip() if self.conversation is None else saved_value(self.conversation),
        )


def saved_value(conversation_id: str) -> dict[str, Any]:
    """What the browser keeps of the chat (`gr.BrowserState`)."""
    return {"conversation_id": conversation_id or None}


def saved_id(saved: Any) -> str:
    """The conversation id the browser kept ("" if none, or not a value of ours)."""
    value = saved.get("conversation_id") if isinstance(saved, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= 64 else ""


def new_conversation_id() -> str:
    return uuid.uuid4().hex[:12]


def build_request(prompt: str, history: list[Turn], options: dict[str, Any]) -> RunRequest:
    """The run request for a prompt after `history`; an InvalidRequestError if the input is wrong."""
    words = [w.strip() for w in inputs.text(options.get("forbidden_words"), "forbidden words").split(",") if w.strip()]
    validation = {
        "mode": options.get("mode") or "stream",
        "json": inputs.flag(options.get("must_be_json"), "must be JSON"),
        "max_length": inputs.whole_number(options.get("max_length"), "max length", low=1, high=MAX_LENGTH,
                                          zero="no limit"),
        "forbidden_words": words,
    }
    return RunRequest.parse({
        "model": inputs.text(options.get("model"), "model") or None,
        "messages": provider_messages(history),
        "prompt": inputs.text(prompt, "prompt"),
        "system": inputs.text(options.get("system"), "system prompt").strip() or None,
        "temperature": _temperature(options.get("temperature")),
        "max_output_tokens": _max_tokens(options.get("max_output_tokens")),
        "reasoning_effort": reasoning_effort(options.get("reasoning_effort")),
        "validation": validation,
    })


def build_template_request(
    template: Template, fields: dict[str, Any] | None, history: list[Turn], options: dict[str, Any]
) -> RunRequest:
    """The run of `template` with the fields' values after `history`; the model, temperature and
    max output tokens fields override the template's own when set. A TemplateError (file:line) if
    the values do not fit."""
    request = template.to_run_request(
        template_values(template, inputs.json_object(fields, "variables")),
        model=inputs.text(options.get("model"), "model") or None,
        temperature=_temperature(options.get("temperature")),
        max_output_tokens=_max_tokens(options.get("max_output_tokens")),
        reasoning_effort=reasoning_effort(options.get("reasoning_effort")),
    )
    if history:
        request = request.model_copy(update={"messages": [*provider_messages(history), *request.messages]})
    return request


def reasoning_effort(value: str | None) -> ReasoningEffort | None:
    """The effort picker's value: None for the model's default (empty, or "model default");
    an InvalidRequestError naming the values for anything else."""
    value = inputs.text(value, "reasoning effort").strip().lower()
    if not value or value == MODEL_DEFAULT:
        return None
    if value not in REASONING_EFFORTS:
        raise InvalidRequestError(
            f"reasoning effort must be one of {', '.join(REASONING_EFFORTS)} (or empty for the model's "
            f"default), got {value!r}"
        )
    return cast(ReasoningEffort, value)


def status_with_template(run: Run, line: str) -> str:
    """The status line, ending with the template and file version the run used, if any."""
    request = run.request
    if not request.template:
        return line
    return f"{line} · template {template_label(request.template, request.template_hash)}"


class ChatHandlers:
    def __init__(self, context: AppContext) -> None:
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
        reasoning_effort: str | None = None,
        request: gr.Request | None = None,
    ) -> AsyncIterator[tuple[Any, ...]]:
        """Send the prompt; stream the answer into the chat."""
        options = _options(model, system, temperature, max_output_tokens, mode, must_be_json,
                           max_length, forbidden_words, reasoning_effort)
        where = _Where(_conversation_of(turns), login(request), "chat")
        async for outputs in self._converse(prompt, list(turns or []), options, where, clear_prompt=True):
            yield outputs

    async def run_template(
        self,
        template: str | None,
        variables: dict[str, Any] | None = None,
        model: str | None = None,
        system: str | None = None,
        temperature: str | float | None = None,
        max_output_tokens: float | None = None,
        mode: str = "stream",
        must_be_json: bool = False,
        max_length: float | None = None,
        forbidden_words: str | None = None,
        turns: list[Turn] | None = None,
        reasoning_effort: str | None = None,
        request: gr.Request | None = None,
    ) -> AsyncIterator[tuple[Any, ...]]:
        """Run a template with `variables` (a JSON object; empty values mean "use the default") as
        the next chat turn. `model`, `temperature` and `max_output_tokens` override the template's
        when set (the page sets the Model field to the template's model on a pick); its system
        prompt and rules replace the settings panel's."""
        name = chosen(template)
        if name is None:
            yield Update(status="⚠ Pick a template to run.", running=False).outputs()
            return
        options = _options(model, system, temperature, max_output_tokens, mode, must_be_json,
                           max_length, forbidden_words, reasoning_effort)
        where = _Where(_conversation_of(turns), login(request), "template")
        async for outputs in self._converse("", list(turns or []), options, where, clear_prompt=False,
                                            template=name, variables=variables):
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
        reasoning_effort: str | None = None,
        request: gr.Request | None = None,
    ) -> AsyncIterator[tuple[Any, ...]]:
        """Answer the last prompt again, replacing the last answer (a template's turn: rendered
        again from the file as it is now, with the same values)."""
        turns = list(turns or [])
        if not turns:
            gr.Warning("There is no answer to regenerate yet.")
            yield Update(status="Nothing to regenerate yet: send a prompt first.").outputs()
            return
        options = _options(model, system, temperature, max_output_tokens, mode, must_be_json,
                           max_length, forbidden_words, reasoning_effort)
        last = turns[-1]
        where = _Where(last.conversation, login(request), "chat" if last.template is None else "template")
        async for outputs in self._converse(last.user, turns[:-1], options, where, clear_prompt=False,
                                            template=last.template, variables=last.variables):
            yield outputs

    async def stop(self, run_id: str | None = None, turns: list[Turn] | None = None) -> tuple[Any, ...]:
        """Stop the streaming run: the provider connection closes, the partial answer stays."""
        service = self.context.service
        run = service.get(run_id) if run_id else None
        if run is None:
            return Update(run_id="", running=False).outputs()
        run.cancel()
        await wait_ended(run)
        # Let the streaming handler (stopped by Gradio or ending on its own) send its last update
        # first, so this final one is not overwritten by an older one.
        await self.context.wait_stream_ended(run.id, STOP_GRACE)
        turns = list(turns or [])
        if not turns or turns[-1].outcome not in ("streaming", "validating"):
            return Update(run_id="", running=False).outputs()  # the answer had already ended
        progress = RunProgress.replay(run.model.id, run.log, buffered=_buffered(run))
        last = turns[-1]
        return self._render(run, progress, turns[:-1], _prompt_of(run), final=True,
                            source=(last.template, last.variables, last.conversation)).outputs()

    async def clear(self, run_id: str | None = None) -> tuple[Any, ...]:
        """Forget the conversation (stopping a run still streaming)."""
        run = self.context.service.get(run_id) if run_id else None
        if run is not None:
            run.cancel()
            await wait_ended(run)
            # As in `stop`: the streaming handler's last update (the stopped turn) must come
            # before this one, or it would put the turn back on the page and in `turns`.
            await self.context.wait_stream_ended(run.id, STOP_GRACE)
        return Update(chat=[], turns=[], run_id="", status="", validation="", running=False,
                      conversation="").outputs()

    # -- a kept conversation back on the page ----------------------------------------------------
    async def restore(self, saved: Any = None, request: gr.Request | None = None) -> AsyncIterator[tuple[Any, ...]]:
        """Page load: the conversation the browser kept (`{"conversation_id": …}`) back in the
        chat; an answer still streaming in this process is followed to its end (Stop works)."""
        async for outputs in self._open(saved_id(saved), login(request), quiet=True):
            yield outputs

    async def open_conversation(
        self, conversation_id: str | None = None, run_id: str | None = None, request: gr.Request | None = None
    ) -> AsyncIterator[tuple[Any, ...]]:
        """Another tab opens a kept conversation in the chat (the browser keeps it for a reload).
        Not while the chat streams an answer: that stream would go on writing into the page."""
        if run_id:
            gr.Warning(BUSY_CHAT)
            yield Update(status=escape_markdown(f"⚠ {BUSY_CHAT}")).outputs()
            return
        async for outputs in self._open(saved_id({"conversation_id": (conversation_id or "").strip()}),
                                        login(request), quiet=False):
            yield outputs

    async def _open(self, conversation_id: str, user: str | None, quiet: bool) -> AsyncIterator[tuple[Any, ...]]:
        if not conversation_id:
            yield Update().outputs()
            return
        redact = self.context.redact
        try:
            found = await load_conversation(self.context.service, conversation_id, user, redact)
        except Exception:  # a store that fails must not break the page: start afresh
            log.exception("could not read conversation %s", conversation_id)
            found, message = None, "⚠ The kept conversation could not be read; a new one starts here."
        else:
            message = REFUSED if found is not None and found.refused else MISSING
        if found is None or found.refused:
            if not quiet:
                gr.Warning(message)
            yield Update(chat=[], turns=[], run_id="", status=escape_markdown(message), validation="",
                         running=False, conversation="").outputs()
            return
        turns = found.turns
        if found.live is None:
            last_model = found.last.model if found.last is not None else ""
            status, validation = page_lines(found.last, redact, model_price_hint(self.context.service, last_model))
            yield Update(chat=chat_messages(turns), turns=turns, run_id="", status=status, validation=validation,
                         running=False, conversation=conversation_id).outputs()
            return
        run, last = found.live, turns[-1]
        async for outputs in self._follow(run, turns[:-1], _prompt_of(run),
                                          (last.template, last.variables, conversation_id),
                                          Update(conversation=conversation_id)):
            yield outputs

    # -- the template picker --------------------------------------------------------------------
    def access(self, request: gr.Request | None) -> Access:
        """What the request's login may be offered."""
        return Access.of(self.context, login(request))

    def template_choices(self, access: Access) -> list[tuple[str, str]]:
        """The chat picker's choices: the role's templates, after "(none)" when it may write prompts."""
        return choices(self.context, with_none=access.free_prompts, access=access)

    def pick_template(self, name: str | None, request: gr.Request | None = None) -> tuple[Any, ...]:
        """A template was picked: its info and preview; Run template replaces the prompt box (which a
        role without prompts of its own never gets back).
        Outputs: info, preview, template area, prompt box, model, Send, Run template."""
        access = self.access(request)
        view = describe(self.context, name, access=access)
        picked = chosen(name) is not None
        free = not picked and access.free_prompts
        model = gr.update(value=view.template.model) if view.template and view.template.model else gr.skip()
        return (
            view.info, view.preview, gr.update(visible=picked), gr.update(visible=free),
            model, gr.update(visible=free), gr.update(visible=picked),
        )

    def refresh_templates(self, name: str | None, revision: int | None,
                          request: gr.Request | None = None) -> tuple[Any, ...]:
        """↻: list the templates again and rebuild the picked one's fields from its file.
        Outputs: dropdown, revision, info, preview."""
        access = self.access(request)
        listed = self.template_choices(access)
        if name not in {value for _, value in listed}:
            name = listed[0][1] if listed else None
        view = describe(self.context, name, access=access)
        return gr.update(choices=listed, value=name), (revision or 0) + 1, view.info, view.preview

    def list_templates(self, name: str | None, request: gr.Request | None = None) -> Any:
        """The dropdown got focus: list the templates as they are on disk now."""
        listed = self.template_choices(self.access(request))
        if name not in {value for _, value in listed}:
            return gr.update(choices=listed)
        return gr.update(choices=listed, value=name)

    def preview(self, template: str | None, variables: dict[str, Any] | None = None,
                request: gr.Request | None = None) -> str:
        """The exact system and user prompt the variables give (or why they do not render)."""
        if chosen(template) is None:
            return ""
        view = describe(self.context, template, variables or {}, access=self.access(request))
        return view.preview if view.template is not None else view.info  # why there is none

    def fields_changed(self, specs: list[FieldSpec]) -> Callable[..., str]:
        """For the rendered fields: (template, *fields) → the preview."""

        def changed(request: gr.Request, template: str | None, *fields: Any) -> str:
            return self.preview(template, values_of(specs, fields), request)

        return changed

    # -- what the login spent ---------------------------------------------------------------------
    async def spend(self, request: gr.Request | None = None) -> Any:
        """The line under the status: what the login spent today and this month of its role's
        budgets (hidden for a role without one, or without logins)."""
        user = login(request)
        principal = self.access(request).principal
        if user is None or principal is None or not principal.policy.budgeted:
            return gr.update(value="", visible=False)  # (and no look at the store)
        try:
            spending = await self.context.service.spending(user)
        except Exception:  # the page goes on without the line; the log says why
            log.warning("could not read what %s spent", user, exc_info=True)
            return gr.skip()
        line = spend_line(spending, time.time())
        return gr.update(value=escape_markdown(line), visible=bool(line))

    def template_runner(self, specs: list[FieldSpec]) -> Callable[..., AsyncIterator[tuple[Any, ...]]]:
        """For Run template: (template, *settings, turns, effort, *fields) → the updates of `run_template`
        (Gradio passes the request first: its only place before `*args`)."""
        count = len(specs)

        async def run(request: gr.Request, template: str | None, *args: Any) -> AsyncIterator[tuple[Any, ...]]:
            head, fields = args[: len(args) - count], args[len(args) - count:]
            model, system, temperature, max_tokens, mode, as_json, max_length, words, turns, effort = head
            async for outputs in self.run_template(template, values_of(specs, fields), model, system, temperature,
                                                   max_tokens, mode, as_json, max_length, words, turns, effort,
                                                   request):
                yield outputs

        return run

    # -- the streaming loop ---------------------------------------------------------------------
    async def _converse(
        self, prompt: str, history: list[Turn], options: dict[str, Any], where: _Where, clear_prompt: bool,
        template: str | None = None, variables: dict[str, Any] | None = None,
    ) -> AsyncIterator[tuple[Any, ...]]:
        conversation = where.conversation or new_conversation_id()
        source = (template, variables, conversation)
        origin = RunOrigin(user=where.user, source=where.source, conversation_id=conversation, position=len(history))
        try:
            if template is None:
                request = build_request(prompt, history, options)
            else:  # the template as its file is now; its rendered prompt is the user's turn
                Access.of(self.context, where.user).check_template(template)
                request = build_template_request(self.context.registry.get(template), variables, history, options)
            prompt = request.messages[-1].content  # as the request has it (lone surrogates repaired)
            run = self.context.service.start(request, origin)
        except UsageError as error:
            message = self.context.redact(error.message)
            log.info("refused a %s run: %s", where.source, message)  # bad input: one line, no traceback
            gr.Warning(message)
            yield Update(status=escape_markdown(f"⚠ {message}"), running=False).outputs()
            return
        except Exception:  # a bug of ours: say so on the page, keep the traceback in the log
            log.exception("could not start a run")
            yield Update(status="⚠ llmtool failed unexpectedly; the server log has the details.",
                         running=False).outputs()
            return

        first = Update(conversation=conversation if conversation != where.conversation else None)
        if clear_prompt:
            first.prompt = ""
        async for outputs in self._follow(run, history, prompt, source, first):
            yield outputs

    async def _follow(
        self, run: Run, history: list[Turn], prompt: str, source: Source, first: Update,
    ) -> AsyncIterator[tuple[Any, ...]]:
        """Stream `run` (from its first event: a run followed again after a reload shows all of
        it, nothing twice) into the last turn after `history`. `first` adds to the first update."""
        loop = asyncio.get_running_loop()
        started = loop.time() - max(0.0, time.time() - run.created_at)
        progress = RunProgress(model=run.model.id, buffered=_buffered(run))
        self.context.stream_started(run.id)
        try:
            shown = self._render(run, progress, history, prompt, final=False, source=source)
            shown.run_id, shown.running = run.id, True
            shown.prompt, shown.conversation = first.prompt, first.conversation
            shown.status = first.status or shown.status
            yield shown.outputs()
            batches = self._batches(run)
            async with aclosing(batches):
                async for batch in batches:
                    for event in batch:
                        progress.apply(event)
                    update = self._render(
                        run, progress, history, prompt, final=progress.done, elapsed=loop.time() - started,
                        source=source,
                    )
                    if not progress.done:
                        # Mid-answer only the chat and what changed are sent: every output costs
                        # Gradio a postprocess per tick. `turns` (read by Stop, which rebuilds the
                        # last turn from the run) is sent with the first and the final update.
                        update.turns = None
                        if update.status == shown.status:
                            update.status = None
                        else:
                            shown.status = update.status
                        if update.validation == shown.validation:
                            update.validation = None
                        else:
                            shown.validation = update.validation
                    yield update.outputs()
        finally:
            # The run goes on without a reader (a reload follows it again); Stop and Clear cancel it.
            self.context.stream_ended(run.id)

    def _batches(self, run: Run) -> AsyncGenerator[list[RunEvent], None]:
        # update_interval 0: one page update per event, the slow baseline the benchmark compares to.
        # The page was just shown ("connecting…"): a status change alone (started) waits for the pace,
        # the first text (or thought) goes out at once.
        return batches(run.events(), Pace.of(self.context.settings), urgent=_shows_text)

    def _render(
        self,
        run: Run,
        progress: RunProgress,
        history: list[Turn],
        prompt: str,
        final: bool,
        elapsed: float = 0.0,
        source: Source = (None, None, ""),
    ) -> Update:
        redact = self.context.redact
        template, variables, conversation = source
        turn = replace(redacted(turn_from_progress(prompt, progress, elapsed), redact), template=template,
                       variables=variables, conversation=conversation)
        turns = [*history, turn]
        status = status_with_template(run, progress.status_line(elapsed))
        if final and isinstance(progress.terminal, Completed):
            status = with_price_hint(status, progress.terminal.metrics,
                                     self.context.service.catalog.price_hint(run.model))
        update = Update(
            chat=chat_messages(turns),
            turns=turns,
            status=escape_markdown(redact(status)),
            validation=escape_markdown(redact(progress.validation_line())),
        )
        if final:
            update.run_id, update.running = "", False
            problem = self.context.service.store_problem
            if problem:  # the answer is here; say that it is not being kept while that lasts
                update.status = f"{update.status} · ⚠ {escape_markdown(problem)}"
        return update


# What a new turn inherits: the template and values it was rendered from, its conversation id.
Source = tuple[str | None, dict[str, Any] | None, str]


def _conversation_of(turns: list[Turn] | None) -> str:
    """The conversation the turns belong to ("" before the first: a new one starts)."""
    return turns[-1].conversation if turns else ""


@dataclass(frozen=True)
class _Where:
    """Where a chat run comes from: its conversation ("" starts one), login and surface."""

    conversation: str
    user: str | None
    source: Any  # RunSource: "chat" or "template"


def _options(*values: Any) -> dict[str, Any]:
    """The settings panel's values by name (the order of `ChatComponents.options`, then the effort)."""
    names = ("model", "system", "temperature", "max_output_tokens", "mode", "must_be_json",
             "max_length", "forbidden_words", "reasoning_effort")
    return dict(zip(names, values, strict=True))


def _temperature(value: str | float | None) -> float | None:
    """The temperature field: empty means the model's default."""
    return inputs.number(value, "temperature", low=0, high=2, empty="the model's default")


def _max_tokens(value: float | None) -> int | None:
    """The max output tokens field: 0 (or nothing) means the model's default."""
    return inputs.whole_number(value, "max output tokens", low=1, high=MAX_OUTPUT_TOKENS, zero="the model's default")


def _shows_text(event: RunEvent) -> bool:
    """An event that puts words on the page: the answer's text, or the model's thoughts."""
    return isinstance(event, (TextDelta, ReasoningDelta))


def _buffered(run: Run) -> bool:
    return run.request.validation.mode == "buffer"


def _prompt_of(run: Run) -> str:
    return run.request.messages[-1].content
