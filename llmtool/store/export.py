"""Runs out of the store as JSONL or CSV: every run a filter selects, streamed, never all in memory.

    count = await export_runs(store, RunQuery(status="failed"), Path("failed.jsonl"))

JSONL has one complete record per line (request, text, metrics, validation, error…). CSV has one
flat row per run for spreadsheets: nested values as JSON text, and cells a spreadsheet would run as
a formula (an answer starting with `=HYPERLINK(…)`) prefixed with `'`; UTF-8 with a byte-order
mark, which Excel needs to read it as UTF-8.
"""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from llmtool.store.protocol import RunStore, StoreError
from llmtool.store.records import RunQuery, RunRecord

EXPORT_SUFFIXES = (".jsonl", ".csv")
CSV_COLUMNS = [
    "id", "created_at", "ended_at", "status", "user", "source", "model", "template", "template_hash",
    "conversation_id", "position", "evaluation_id", "prompt", "system", "text", "error_kind", "error_message",
    "validation_passed", "validation_problems", "time_to_first_token", "total_time", "input_tokens",
    "cached_input_tokens", "output_tokens", "usage_estimated", "tokens_per_second", "cost_usd", "variables",
    "request",
]
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def record_json(record: RunRecord) -> str:
    return record.model_dump_json()


def csv_row(record: RunRecord) -> dict[str, Any]:
    metrics = record.metrics.model_dump() if record.metrics else {}
    row: dict[str, Any] = {
        **record.model_dump(include={
            "id", "created_at", "ended_at", "status", "user", "source", "model", "template", "template_hash",
            "conversation_id", "position", "evaluation_id", "prompt", "system", "text", "error_kind",
            "error_message",
        }),
        "validation_passed": None if record.validation is None else record.validation.passed,
        "validation_problems": "; ".join(record.validation.problems) if record.validation else "",
        **{key: metrics.get(key) for key in (
            "time_to_first_token", "total_time", "input_tokens", "cached_input_tokens", "output_tokens",
            "usage_estimated", "tokens_per_second", "cost_usd")},
        "variables": json.dumps(record.variables, ensure_ascii=False) if record.variables is not None else "",
        "request": json.dumps(record.request, ensure_ascii=False),
    }
    return {key: _defused(row.get(key)) for key in CSV_COLUMNS}


async def export_runs(store: RunStore, query: RunQuery, path: Path) -> int:
    """Write every run `query` selects (all pages) to `path` (.jsonl or .csv); returns how many.
    A `StoreError` says why the file cannot be written."""
    suffix = path.suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        raise StoreError(f"the export file {path.name} must end in .jsonl or .csv")
    try:
        if suffix == ".jsonl":
            with path.open("w", encoding="utf-8") as out:
                return await _write_jsonl(store.iter_runs(query), out)
        with path.open("w", encoding="utf-8-sig", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            count = 0
            async for record in store.iter_runs(query):
                writer.writerow(csv_row(record))
                count += 1
            return count
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror or exc}") from None


async def _write_jsonl(records: AsyncIterator[RunRecord], out: Any) -> int:
    count = 0
    async for record in records:
        out.write(record_json(record) + "\n")
        count += 1
    return count


def _defused(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value
