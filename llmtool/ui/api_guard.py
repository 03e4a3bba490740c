"""The door of the tool's Gradio API: each event request checked before Gradio reads it.

    app = ApiGuard(gradio_app, blocks, redact)     # web/app.py wraps the mounted Gradio app with it

Gradio answers a request it cannot read badly: an unknown `fn_index` or endpoint name is a bare
HTTP 500 (a KeyError), too few values a blank `Error`, a value its component cannot read (text for
a Number, a string for a file) a blank `Error` too, each with a traceback in the server log. The door
reads the body of every event request (`/gradio_api/queue/join`, `/run/…`, `/api/…`, `/call/…`),
finds the endpoint the way Gradio will (the session's own events first: `gr.render` makes events
per page), and refuses what does not fit with a sentence and one line in the log:

- no such endpoint: 404, naming the public endpoints;
- a body that is not JSON, is nested too deeply or is too large: 400 / 413;
- the wrong number of values, or a value its component does not take (text where a number goes, NaN
  or Infinity, a choice not offered, text where a file goes): 422, in the shape Gradio's own input
  validators use (`detail`: one `{"__type__": "validate", "is_valid": false, "message", "parameter_name"}`
  per refused input, which gradio_client raises as a ValidationError), with the sentences in `error`.

Text is repaired on the way in: a lone surrogate (`"\\ud800"`) becomes U+FFFD, so no handler, store
or page meets one. What the door lets through, the handlers' own checks (`inputs.py`) and the
service's request model judge; `GuardedBlocks` turns anything Gradio still cannot read into a
sentence without a traceback.
"""

from __future__ import annotations

import html
import json
import logging
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr
from gradio.blocks import BlockFunction
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmtool.text import repair_strings
from llmtool.ui.inputs import shown
from llmtool.ui.lean_blocks import LeanBlocks

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 2 * 1024 * 1024  # an event's values: a prompt of hundreds of pages (files go to /upload)
MAX_DEPTH = 64  # nesting of a value: a template's variables are a flat object
MAX_ITEMS = 20_000  # values in lists and objects, all inputs together: checked in a few milliseconds
MAX_CHOICES_SHOWN = 12
_EVENT_PATH = re.compile(r"^/gradio_api/(?:(queue/join)|(run|api|call)/(?:(v2)/)?([^/]+))/?$")
UPLOAD_HINT = "upload it through the page, or send gradio_client's handle_file(path)"

Redact = Callable[[str], str]


class Refused(Exception):
    """A request the door does not pass on: its status and what to say."""

    def __init__(self, status: int, message: str, detail: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.detail = status, message, detail


# -- what a component takes -----------------------------------------------------------------------
class _Budget:
    """How many more values (items of lists and objects, at any depth) a request may hold."""

    def __init__(self, items: int = MAX_ITEMS) -> None:
        self.left = items


def _depth_problem(value: Any, budget: _Budget | None = None, depth: int = 0) -> str | None:
    """NaN/Infinity, nesting deeper than MAX_DEPTH, or more than MAX_ITEMS values, anywhere in
    `value`: checked in time bounded by the budget, whatever the request holds."""
    if isinstance(value, float) and not math.isfinite(value):
        if depth == 0:
            return f"must be a finite number, not {shown(value)} (JSON has no such number)"
        return f"must hold finite numbers only, not {shown(value)} (JSON has no such number)"
    if isinstance(value, (dict, list)):
        budget = budget or _Budget()
        budget.left -= len(value)
        if budget.left < 0:
            return f"holds more than {MAX_ITEMS:,} values, the most an event takes"
        if depth >= MAX_DEPTH:
            return f"is nested more than {MAX_DEPTH} levels deep"
        for item in value.values() if isinstance(value, dict) else value:
            if (problem := _depth_problem(item, budget, depth + 1)) is not None:
                return problem
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _bounds(block: Any) -> str:
    low, high = getattr(block, "minimum", None), getattr(block, "maximum", None)
    if low is not None and high is not None:
        return f" from {low:g} to {high:g}"
    if low is not None:
        return f" of at least {low:g}"
    if high is not None:
        return f" of at most {high:g}"
    return ""


def _choices(block: Any) -> list[Any]:
    return [value for _, value in getattr(block, "choices", None) or []]


def _one_of(values: Sequence[Any]) -> str:
    listed = ", ".join(str(v) for v in values[:MAX_CHOICES_SHOWN])
    more = f" (and {len(values) - MAX_CHOICES_SHOWN} more)" if len(values) > MAX_CHOICES_SHOWN else ""
    return f"one of {listed}{more}" if values else "one of the choices offered"


def value_problem(block: Any, value: Any, budget: _Budget | None = None) -> str | None:
    """Why `block` cannot take `value` (what is allowed, what came), or None if it can. `budget`
    bounds the values checked over several calls (one request's inputs)."""
    if (problem := _depth_problem(value, budget)) is not None:
        return problem
    if isinstance(block, (gr.State, gr.BrowserState)):
        return None  # the session's own value, or what the browser kept (handlers read it warily)
    if isinstance(block, (gr.Number, gr.Slider)):
        info = getattr(block, "info", None)
        allowed = f"a number{_bounds(block)}" + (f" ({str(info).rstrip('.')})" if info else "")
        if value is None and isinstance(block, gr.Number):
            return None
        if not _is_number(value):
            return f"must be {allowed}; got {shown(value)}"
        low, high = getattr(block, "minimum", None), getattr(block, "maximum", None)
        if (low is not None and value < low) or (high is not None and value > high):
            return f"must be {allowed}; got {shown(value)}"
        return None
    if isinstance(block, gr.Checkbox):
        return None if value is None or isinstance(value, bool) else f"must be true or false; got {shown(value)}"
    if isinstance(block, gr.Radio):
        values = _choices(block)
        return None if value is None or value in values else f"must be {_one_of(values)}; got {shown(value)}"
    if isinstance(block, gr.Dropdown):
        return _dropdown_problem(block, value)
    if isinstance(block, gr.File):
        return _file_problem(block, value)
    if isinstance(block, gr.Textbox):
        if value is None or isinstance(value, str) or _is_number(value):
            return None
        return f"must be text; got {shown(value)}"
    return None


def _dropdown_problem(block: gr.Dropdown, value: Any) -> str | None:
    def single(item: Any) -> bool:
        return item is None or isinstance(item, str) or _is_number(item)

    if block.multiselect:
        if value is not None and not (isinstance(value, list) and all(single(v) for v in value)):
            return f"must be a list of choices; got {shown(value)}"
        picked = value or []
    else:
        if not single(value):
            return f"must be one choice (text); got {shown(value)}"
        picked = [] if value is None else [value]
    if not block.allow_custom_value:
        values = _choices(block)
        for item in picked:
            if item not in values:
                return f"must be {_one_of(values)}; got {shown(item)}"
    return None


def _file_problem(block: gr.File, value: Any) -> str | None:
    def is_file(item: Any) -> bool:
        return isinstance(item, dict) and isinstance(item.get("path"), str)

    if value is None:
        return None
    if block.file_count == "single":
        return None if is_file(value) else f"must be a file ({UPLOAD_HINT}); got {shown(value)}"
    if isinstance(value, list) and all(is_file(item) for item in value):
        return None
    return f"must be a list of files ({UPLOAD_HINT}); got {shown(value)}"


def input_name(fn: BlockFunction, index: int) -> str:
    """How an input of `fn` is named to a caller: its parameter name, with its label on the page."""
    names = list(fn.input_parameter_names or [])
    name = names[index] if index < len(names) and names[index] else None
    label = getattr(fn.inputs[index], "label", None) if index < len(fn.inputs) else None
    if name and label and label.lower() != name.replace("_", " ").lower():
        return f"{name} (\u201c{label}\u201d)"
    return name or (str(label) if label else f"value {index + 1}")


def endpoint_name(fn: BlockFunction) -> str:
    return f"/{fn.api_name}" if fn.api_name else f"fn_index {fn._id}"


def _public(blocks: gr.Blocks) -> list[str]:
    return [f"/{fn.api_name}" for fn in blocks.fns.values() if fn.api_name and fn.api_visibility == "public"]


# -- the door -------------------------------------------------------------------------------------
class ApiGuard:
    """ASGI wrapper of the mounted Gradio app: event requests are checked (see the module's doc)."""

    def __init__(self, app: ASGIApp, blocks: gr.Blocks, redact: Redact | None = None) -> None:
        self.app, self.blocks = app, blocks
        self.redact: Redact = redact or (lambda text: text)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _EVENT_PATH.match(scope.get("path", "")) if scope["type"] == "http" else None
        if match is None or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        queue_join, _, v2, api_name = match.groups()
        try:
            body = await _read_body(receive)
            payload = _parse(body)
            fn, session = self._endpoint(payload, None if queue_join else api_name)
            if not v2:  # /call/v2 takes keyword arguments: the net (`GuardedBlocks`) judges those
                repaired = self._check(fn, session, payload, simple=not queue_join and match.group(2) == "call")
                if repaired is not None:
                    body = json.dumps(repaired).encode()
        except Refused as refused:
            message = self.redact(refused.message)
            log.warning("refused a request to %s: %s", scope.get("path"), message)
            content: dict[str, Any] = {"detail": message}
            if refused.detail is not None:
                content = {"detail": [{**d, "message": self.redact(d["message"])} for d in refused.detail],
                           "error": message}
            await _answer(send, refused.status, content)
            return
        await self.app(_with_length(scope, len(body)), _replay(body, receive), send)

    def _endpoint(self, payload: dict[str, Any], api_name: str | None) -> tuple[BlockFunction, Any]:
        """The event the request names (as Gradio's `route_utils.get_fn` finds it), and its session."""
        session_hash = payload.get("session_hash")
        session = self.blocks.state_holder.session_data.get(session_hash) if isinstance(session_hash, str) else None
        fns = session.blocks_config.fns if session is not None else self.blocks.fns
        fn_index = payload.get("fn_index")
        if fn_index is not None or api_name is None:
            if fn_index is None:
                raise Refused(400, "fn_index is missing: name the event by its fn_index, or call an endpoint "
                                   "by name (/gradio_api/call/NAME)")
            if not isinstance(fn_index, int) or isinstance(fn_index, bool):
                raise Refused(400, f"fn_index must be a whole number; got {shown(fn_index)}")
            if fn_index not in fns:
                raise Refused(404, f"there is no event with fn_index {fn_index}: see /gradio_api/info for the "
                                   "endpoints")
            return fns[fn_index], session
        for fn in fns.values():
            if fn.api_name == api_name:
                return fn, session
        raise Refused(404, f"there is no endpoint /{api_name[:60]}; the endpoints are "
                           f"{', '.join(_public(self.blocks))}")

    def _check(self, fn: BlockFunction, session: Any, payload: dict[str, Any], simple: bool) -> dict | None:
        """Refuse what `fn`'s inputs cannot take; the payload with its text repaired if that changed it."""
        data = payload.get("data")
        if not isinstance(data, list):
            raise Refused(422, f"data must be the list of the values of {endpoint_name(fn)}; got {shown(data)}",
                          [_invalid("data", "must be a list of values")])
        inputs = list(fn.inputs)
        api_inputs = [block for block in inputs if not block.skip_api]
        positions = list(range(len(inputs)))
        if len(data) != len(inputs):
            if not (simple and len(data) == len(api_inputs)):  # /call may leave out the state values
                raise Refused(422, _count_message(fn, len(data)), [_invalid("data", _count_message(fn, len(data)))])
            positions = [i for i, block in enumerate(inputs) if not block.skip_api]
        detail, sentences, values = [], [], list(data)
        budget = _Budget()
        for position, index in enumerate(positions):
            block = inputs[index]
            if session is not None and block._id in session.blocks_config.blocks:
                block = session.blocks_config.blocks[block._id]  # its choices as this page has them
            if _unset_choice(block, values[position]):
                values[position] = None  # "" for a picker without custom values: nothing picked
            problem = None if index in fn.component_prop_inputs else value_problem(block, values[position], budget)
            name = input_name(fn, index)
            detail.append(_invalid(name, problem) if problem else {"__type__": "validate", "is_valid": True,
                                                                   "message": "", "parameter_name": name})
            if problem:
                sentences.append(f"{name} {problem}")
        if sentences:
            raise Refused(422, f"{endpoint_name(fn)}: " + "; ".join(sentences), detail)
        repaired = repair_strings(values, MAX_DEPTH + 1)
        return None if repaired == data else {**payload, "data": repaired}


def _unset_choice(block: Any, value: Any) -> bool:
    return (isinstance(block, gr.Dropdown) and value == "" and not block.multiselect and not block.allow_custom_value
            and "" not in _choices(block))


def _count_message(fn: BlockFunction, got: int) -> str:
    api_inputs = [i for i, block in enumerate(fn.inputs) if not block.skip_api]
    parameters = list(fn.input_parameter_names or [])
    names = ", ".join((parameters[i] if i < len(parameters) else None) or f"value {i + 1}" for i in api_inputs)
    expected = f"{len(api_inputs)} value{'s' if len(api_inputs) != 1 else ''}" + (f" ({names})" if names else "")
    if len(api_inputs) != len(fn.inputs):
        expected += f", or {len(fn.inputs)} with the session's state values as null"
    return f"{endpoint_name(fn)} takes {expected}; got {got}"


def _invalid(name: str, message: str) -> dict[str, Any]:
    return {"__type__": "validate", "is_valid": False, "message": message, "parameter_name": name}


async def _read_body(receive: Receive) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Refused(400, "the request ended before its body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise Refused(413, f"the body is larger than {MAX_BODY_BYTES // (1024 * 1024)} MB, the most an event "
                               "takes (files go to /gradio_api/upload)")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _parse(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except RecursionError:
        raise Refused(400, f"the body is nested too deeply (at most {MAX_DEPTH} levels)") from None
    except ValueError as error:  # JSONDecodeError, or bytes that are not UTF-8/16/32
        raise Refused(400, f"the body is not valid JSON: {str(error)[:120]}") from None
    if not isinstance(payload, dict):
        raise Refused(400, f"the body must be a JSON object with the endpoint's data; got {shown(payload)}")
    return payload


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _with_length(scope: Scope, length: int) -> Scope:
    dropped = (b"content-length", b"transfer-encoding")
    headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() not in dropped]
    return {**scope, "headers": [*headers, (b"content-length", str(length).encode())]}


async def _answer(send: Send, status: int, content: dict[str, Any]) -> None:
    body = json.dumps(content).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]})
    await send({"type": "http.response.body", "body": body})


# -- the net --------------------------------------------------------------------------------------
class GuardedBlocks(LeanBlocks):
    """gr.Blocks whose events say what was wrong with a value they cannot read, without a traceback
    in the log: the door (`ApiGuard`) refuses most such requests before they get here; this catches
    the rest (keyword calls through /call/v2, a value a component's own reading still refuses).
    `redact` masks the sentences (set by `build_demo`). As `LeanBlocks`, its skipped outputs cost nothing."""

    redact: Redact = staticmethod(lambda text: text)  # an instance sets its own

    def validate_inputs(self, block_fn: BlockFunction, inputs: list[Any]) -> None:
        if len(inputs) != len(block_fn.inputs):  # Gradio's own check lets extra values through
            raise refused(block_fn, _count_message(block_fn, len(inputs)), self.redact)

    async def preprocess_data(self, block_fn: BlockFunction, inputs: list[Any], state: Any,
                              explicit_call: bool = False) -> Any:
        try:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        except gr.Error as error:
            if not error.print_exception:
                raise
            raise refused(block_fn, _explain(block_fn, inputs, state) or str(error.message), self.redact) from None
        except Exception as error:  # a value a component could not read: bad input, not a bug of ours
            raise refused(block_fn, _explain(block_fn, inputs, state)
                          or f"a value could not be read ({type(error).__name__})", self.redact) from None


def _explain(fn: BlockFunction, inputs: list[Any], state: Any) -> str | None:
    for index, (block, value) in enumerate(zip(fn.inputs, inputs, strict=False)):
        if state is not None and block._id in state.blocks_config.blocks:
            block = state.blocks_config.blocks[block._id]
        if (problem := value_problem(block, value)) is not None:
            return f"{input_name(fn, index)} {problem}"
    return None


def refused(fn: BlockFunction, message: str, redact: Redact) -> gr.Error:
    """The error an event answers for a value it cannot take: the sentence, one log line, no traceback."""
    sentence = redact(f"{endpoint_name(fn)}: {message}")
    log.warning("refused a value sent to %s", sentence)
    return gr.Error(html.escape(sentence, quote=False), print_exception=False, title="Invalid input")
