"""`llmtool logs`: the runs the app and the CLI kept, read from the run store (like `llm logs`).

    llmtool logs                          # the newest 10 runs, newest first
    llmtool logs -n 0 -q invoice --status failed --json
    llmtool logs show 3f2a9c1b7d40        # one run: request, reasoning, answer, metrics, events
    llmtool logs export -o failed.csv --status failed
    llmtool logs delete 3f2a9c1b7d40      # or: llmtool logs delete --conversation CID
    llmtool logs path                     # where the store is

Opening the store the way every process does also marks `interrupted` the runs of processes that
died mid-answer (never those of a live process), so `logs` after a crash shows what was kept.

Exit codes: 0 ok, 1 no such run or conversation, 2 bad usage or an unusable store (one line).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

from sqlalchemy.exc import SQLAlchemyError

from llmtool.console import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from llmtool.errors import InvalidRequestError
from llmtool.events import ReasoningDelta, RunEvent, TextDelta, stretches
from llmtool.service import LLMService
from llmtool.settings import Settings, load_settings
from llmtool.store import RunQuery, RunRecord, RunStatus, RunStore, StoreError, describe_url
from llmtool.store.export import export_runs
from llmtool.store.open import default_database_url, normalize_url

DEFAULT_COUNT = 10
PAGE = 500
STATUSES: tuple[str, ...] = get_args(RunStatus)
SYMBOLS = {"completed": "✓", "stopped": "■", "failed": "✗", "interrupted": "⚡", "running": "…"}
FILTERS = ("text", "status", "model", "template", "user", "conversation_id")


def register(commands: argparse._SubParsersAction) -> None:
    logs = commands.add_parser(
        "logs", help="list, show, export or delete the kept runs",
        description="The runs the app and the CLI kept (newest first). Without ACTION: list them.",
    )
    logs.add_argument("-n", "--count", default=str(DEFAULT_COUNT), metavar="N",
                      help=f"how many runs (default {DEFAULT_COUNT}; 0: all)")
    _add_filters(logs, None)
    logs.add_argument("--json", action="store_true", help="one JSON object per line")
    logs.set_defaults(handler=_list)
    actions = logs.add_subparsers(dest="action", metavar="[ACTION]")

    show = actions.add_parser("show", help="everything about one run, with its events")
    show.add_argument("run_id", metavar="ID")
    show.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                      help="the record and its events as JSON")
    show.set_defaults(handler=_show)

    export = actions.add_parser("export", help="write every matching run to a .jsonl or .csv file")
    export.add_argument("-o", "--output", required=True, metavar="FILE", help="FILE.jsonl or FILE.csv")
    # SUPPRESS: a filter given before `export` (`logs --status failed export …`) is kept.
    _add_filters(export, argparse.SUPPRESS)
    export.set_defaults(handler=_export)

    delete = actions.add_parser("delete", help="delete one run, or every run of a conversation")
    delete.add_argument("run_id", nargs="?", metavar="ID")
    delete.add_argument("--conversation", dest="delete_conversation", metavar="CID",
                        help="delete every run of this conversation")
    delete.set_defaults(handler=_delete)

    actions.add_parser("path", help="where the run store is").set_defaults(handler=_path)


def _add_filters(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument("-q", "--query", dest="text", metavar="TEXT", default=default,
                        help="runs whose prompt or answer has all these words")
    parser.add_argument("--status", metavar="S", default=default, help="|".join(STATUSES))
    parser.add_argument("--model", metavar="M", default=default, help="PROVIDER:MODEL")
    parser.add_argument("--template", metavar="T", default=default, help="template name")
    parser.add_argument("--user", metavar="U", default=default, help="login name")
    parser.add_argument("--conversation", dest="conversation_id", metavar="CID", default=default,
                        help="runs of one conversation")


# -- the handlers ------------------------------------------------------------------------------
def _list(args: argparse.Namespace) -> int:
    query = _query(args)
    limit = _count(args.count)

    async def body(store: RunStore) -> int:
        shown = 0
        async for record in newest(store, query, limit):
            if args.json:
                print(json.dumps(run_json(record), ensure_ascii=False))
            else:
                if shown:
                    print()
                print(describe_run(record))
            shown += 1
        if not shown and not args.json:
            print("no runs" + (" match" if any(getattr(args, name) for name in FILTERS) else " yet"),
                  file=sys.stderr)
        return EXIT_OK

    return _with_store(args, body)


def _show(args: argparse.Namespace) -> int:
    async def body(store: RunStore) -> int:
        record = await store.get_run(args.run_id)
        if record is None:
            print(f"llmtool: no run with id {args.run_id}", file=sys.stderr)
            return EXIT_FAILED
        events = await store.events(record.id)
        if args.json:
            document = {**record.model_dump(mode="json"), "events": [e.model_dump(mode="json") for e in events]}
            print(json.dumps(document, ensure_ascii=False, indent=2))
        else:
            print(describe_run_fully(record, events))
        return EXIT_OK

    return _with_store(args, body)


def _export(args: argparse.Namespace) -> int:
    query = _query(args)
    path = Path(args.output).expanduser()

    async def body(store: RunStore) -> int:
        count = await export_runs(store, query, path)
        print(f"· {count} run{'' if count == 1 else 's'} written to {path}", file=sys.stderr)
        return EXIT_OK

    return _with_store(args, body)


def _delete(args: argparse.Namespace) -> int:
    if (args.run_id is None) == (args.delete_conversation is None):
        raise InvalidRequestError("logs delete: give a run ID or --conversation CID (one of them)")

    async def body(store: RunStore) -> int:
        if args.run_id is not None:
            if not await store.delete_run(args.run_id):
                print(f"llmtool: no run with id {args.run_id}", file=sys.stderr)
                return EXIT_FAILED
            print(f"· deleted run {args.run_id}", file=sys.stderr)
            return EXIT_OK
        count = await store.delete_conversation(args.delete_conversation)
        if not count:
            print(f"llmtool: no runs in conversation {args.delete_conversation}", file=sys.stderr)
            return EXIT_FAILED
        print(f"· deleted {count} run{'' if count == 1 else 's'} of conversation {args.delete_conversation}",
              file=sys.stderr)
        return EXIT_OK

    return _with_store(args, body)


def _path(args: argparse.Namespace) -> int:
    print(store_location(load_settings(args.config)))
    return EXIT_OK


# -- arguments and the store -------------------------------------------------------------------
def store_location(settings: Settings) -> str:
    """The store's URL as `open_store` uses it, without the password."""
    url = normalize_url(settings.database_url) if settings.database_url else default_database_url()
    return describe_url(url)


async def newest(store: RunStore, query: RunQuery, limit: int) -> AsyncIterator[RunRecord]:
    """The newest `limit` runs `query` selects (0: all), newest first, a page at a time."""
    if not limit:
        async for record in store.iter_runs(query):
            yield record
        return
    before = query.before
    while limit > 0:
        page = await store.list_runs(query.model_copy(update={"limit": min(limit, PAGE), "before": before}))
        for record in page.runs:
            yield record
        limit -= len(page.runs)
        if page.next_cursor is None:
            return
        before = page.next_cursor


def _count(value: str) -> int:
    try:
        count = int(value)
    except ValueError:
        raise InvalidRequestError(f"-n {value}: give a whole number of runs (0 for all)") from None
    if count < 0:
        raise InvalidRequestError(f"-n {value}: the number of runs cannot be negative (0 for all)")
    return count


def _query(args: argparse.Namespace) -> RunQuery:
    values = {name: getattr(args, name, None) for name in FILTERS}
    if values["status"] is not None and values["status"] not in STATUSES:
        raise InvalidRequestError(f"--status {values['status']}: use one of {', '.join(STATUSES)}")
    for name, value in values.items():
        if value is not None and not value.strip():
            raise InvalidRequestError(f"{_option(name)}: the value is empty")
    return RunQuery(**{name: value for name, value in values.items() if value is not None})


def _option(name: str) -> str:
    return {"text": "-q", "conversation_id": "--conversation"}.get(name, f"--{name}")


def _with_store(args: argparse.Namespace, body: Callable[[RunStore], Awaitable[int]]) -> int:
    """Open the store like every process does (runs of dead processes become `interrupted`), run
    `body(store)`, close it. An unusable store is one line on stderr and exit 2."""
    settings = load_settings(args.config)
    shown = store_location(settings)

    async def main() -> int:
        try:
            service = await LLMService.open(settings)
        except StoreError as error:
            print(f"llmtool: cannot read the runs: {error.message}", file=sys.stderr)
            return EXIT_USAGE
        try:
            assert service.store is not None
            return await body(service.store)
        except StoreError as error:
            print(f"llmtool: {error.message}", file=sys.stderr)
            return EXIT_USAGE
        except SQLAlchemyError as error:
            reason = (str(getattr(error, "orig", None) or error).strip().splitlines() or [type(error).__name__])[0]
            print(f"llmtool: cannot read the runs in {shown}: {reason[:300]}", file=sys.stderr)
            return EXIT_USAGE
        finally:
            await service.aclose()

    try:
        return asyncio.run(main())
    except BrokenPipeError:  # `llmtool logs | head`: the reader has what it wanted
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


# -- what a person reads -----------------------------------------------------------------------
def iso_utc(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def local_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def run_json(record: RunRecord) -> dict[str, Any]:
    """One line of `logs --json`: what a script needs about a run (`logs show --json` has it all)."""
    return {
        "id": record.id,
        "created_at": iso_utc(record.created_at),
        "ended_at": iso_utc(record.ended_at),
        "status": record.status,
        "model": record.model,
        "user": record.user,
        "source": record.source,
        "conversation_id": record.conversation_id,
        "position": record.position,
        "template": record.template,
        "template_hash": record.template_hash,
        "prompt": record.prompt,
        "system": record.system,
        "text": record.text,
        "reasoning": record.reasoning,
        "validation": record.validation.model_dump(mode="json") if record.validation else None,
        "error": ({"kind": record.error_kind, "message": record.error_message}
                  if record.error_kind or record.error_message else None),
        "metrics": record.metrics.model_dump(mode="json") if record.metrics else None,
    }


def header(record: RunRecord) -> str:
    parts = [record.id, local_time(record.created_at), f"{SYMBOLS.get(record.status, '?')} {record.status}",
             record.model]
    if record.template:
        parts.append(f"{record.template}@{record.template_hash}" if record.template_hash else record.template)
    if record.metrics is not None:
        parts.append(record.metrics.summary())
    return " · ".join(parts)


def ending_mark(record: RunRecord) -> str | None:
    """What follows the text of a run that did not simply complete."""
    if record.status == "failed":
        return f"(failed: {record.error_message or record.error_kind or 'unknown error'})"
    if record.status in ("stopped", "interrupted"):
        return f"({record.status})"
    if record.status == "running":
        return "(still running)"
    if record.validation is not None and not record.validation.passed:
        return "(validation failed: " + "; ".join(record.validation.problems) + ")"
    return None


def describe_run(record: RunRecord) -> str:
    """A run in the list: its header, the prompt indented, the answer (or partial text and a mark)."""
    lines = [header(record), _indent(record.prompt, "  > ")]
    text = record.text.rstrip("\n")
    mark = ending_mark(record)
    if text:
        lines.append(text)
    if mark:
        lines.append(mark)
    return "\n".join(lines)


def describe_run_fully(record: RunRecord, events: list[RunEvent]) -> str:
    """`logs show`: the run, its request, answer, validation, metrics, error and event log."""
    facts: list[tuple[str, Any]] = [
        ("status", f"{SYMBOLS.get(record.status, '?')} {record.status}"),
        ("model", record.model),
        ("created", f"{local_time(record.created_at)} ({iso_utc(record.created_at)})"),
        ("ended", f"{local_time(record.ended_at)} ({iso_utc(record.ended_at)})" if record.ended_at else None),
        ("source", record.source),
        ("user", record.user),
        ("conversation", f"{record.conversation_id} · turn {record.position}"
         if record.conversation_id and record.position is not None else record.conversation_id),
        ("evaluation", record.evaluation_id),
        ("template", f"{record.template}@{record.template_hash}" if record.template_hash else record.template),
        ("variables", json.dumps(record.variables, ensure_ascii=False) if record.variables else None),
        ("process", record.owner),
    ]
    out = [f"run {record.id}", *(f"  {name:13}{value}" for name, value in facts if value is not None)]

    request = record.request
    out += ["", "request"]
    if request.get("system"):
        out.append("  system")
        out.append(_indent(str(request["system"]), "    "))
    for message in request.get("messages", []):
        out.append(f"  {message.get('role', '?')}")
        out.append(_indent(str(message.get("content", "")), "    "))
    parameters = {key: request[key] for key in ("temperature", "max_output_tokens", "reasoning_effort",
                                                "cache_prompt", "timeouts") if request.get(key) is not None}
    if parameters:
        out.append("  parameters   " + ", ".join(f"{k}={_compact(v)}" for k, v in parameters.items()))
    if request.get("validation"):
        out.append("  rules        " + _compact(request["validation"]))

    thought = record.metrics.thinking_time if record.metrics is not None else None
    if record.reasoning or thought is not None:
        out += ["", "reasoning" + (f" (thought {thought:.1f} s)" if thought is not None else "")]
        out.append(_indent(record.reasoning.rstrip("\n"), "  ") if record.reasoning
                   else "  (the model did not show its thoughts)")

    out += ["", "answer" + (f" {ending_mark(record)}" if ending_mark(record) else "")]
    out.append(_indent(record.text.rstrip("\n"), "  ") if record.text else "  (no text)")

    out.append("")
    if record.validation is not None:
        outcome = record.validation
        verdict = "passed" if outcome.passed else "failed: " + "; ".join(outcome.problems)
        out.append(f"validation     {verdict} ({outcome.rules_checked} rules checked)")
    out.append(f"metrics        {record.metrics.summary() if record.metrics else '(none yet)'}")
    if record.error_kind or record.error_message:
        out.append(f"error          {record.error_kind}: {record.error_message}")

    out += ["", f"events ({len(events)})"]
    out += [f"  {line}" for line in describe_events(events)]
    return "\n".join(out)


def describe_events(events: list[RunEvent]) -> list[str]:
    """One line per event; a stretch of text (or reasoning) deltas is one line (how many, how much text)."""
    lines: list[str] = []
    for position, group in stretches(events):
        first, last = group[0], group[-1]
        if isinstance(first, TextDelta | ReasoningDelta):
            chars = sum(len(e.text) for e in group if isinstance(e, TextDelta | ReasoningDelta))
            end = position + len(group) - 1
            where = f"{position}" if end == position else f"{position}-{end}"
            lines.append(f"{where:>9}  {first.elapsed:8.3f} s  {first.kind} ×{len(group)} ({chars} chars)"
                         + (f", until {last.elapsed:.3f} s" if end > position else ""))
        else:
            lines.append(f"{position:>9}  {first.elapsed:8.3f} s  {first.kind}{_event_detail(first)}")
    return lines


def _event_detail(event: RunEvent) -> str:
    data = event.model_dump(mode="json", exclude={"kind", "elapsed", "text", "metrics"})
    return f"  {_compact(data)}" if data else ""


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in (text.splitlines() or [""]))
