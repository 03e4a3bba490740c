"""Evaluation datasets: one case per row, checked against the template before anything runs.

CSV (a header row) or JSONL (one JSON object a line). Columns/keys:

- a template variable's name: its value for this case (an empty CSV cell or a JSON null means
  "not given": the variable's default applies, and a required one is a problem);
- `id` (optional): the case's name in results; default `#1`, `#2`, …;
- `expect_contains`: a substring the answer must contain (case-sensitive; in JSONL also a list);
- `expect_regex`: a regular expression the answer must match somewhere (`re.search`, multiline;
  write `(?i)` for case-insensitive);
- `expect_json`: true/false — the answer must be valid JSON (one ``` fence allowed).

Expectations are checked in addition to the template's own validation rules. Every problem (unknown
column, missing required variable, a value of the wrong type, a bad JSON line, a bad regex) is
reported as `file:line: problem`, all of them at once.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from llmtool.errors import InvalidRequestError
from llmtool.templates.errors import location
from llmtool.templates.loader import content_hash
from llmtool.templates.template import Template
from llmtool.validation import parse_json_answer

DATASET_SUFFIXES = (".csv", ".jsonl")
ID_COLUMN = "id"
EXPECT_COLUMNS = ("expect_contains", "expect_regex", "expect_json")
_MAX_PROBLEMS = 20
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0", ""}


class DatasetError(InvalidRequestError):
    """The dataset cannot be used; `problems` lists each one as 'file:line: what is wrong'."""

    def __init__(self, problems: list[str]) -> None:
        shown = problems[:_MAX_PROBLEMS]
        if len(problems) > _MAX_PROBLEMS:
            shown.append(f"… and {len(problems) - _MAX_PROBLEMS} more problems")
        super().__init__("\n".join(shown))
        self.problems = problems


class Expectations(BaseModel):
    """What one case's answer must satisfy, besides the template's rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    contains: list[str] = Field(default_factory=list)
    regex: str | None = None
    json_valid: bool = False

    @property
    def count(self) -> int:
        return len(self.contains) + (self.regex is not None) + self.json_valid

    def check(self, text: str) -> list[str]:
        problems = [f"expected to contain {s!r}" for s in self.contains if s not in text]
        if self.regex is not None and not re.search(self.regex, text, re.MULTILINE):
            problems.append(f"expected to match /{self.regex}/")
        if self.json_valid:
            try:
                parse_json_answer(text)
            except json.JSONDecodeError as exc:
                problems.append(f"expected JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
        return problems


class Case(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    line: int = Field(description="Where the case starts in the dataset file.")
    values: dict[str, Any] = Field(description="The variables given (typed); defaults fill the rest.")
    expect: Expectations = Field(default_factory=Expectations)


@dataclass(frozen=True)
class Dataset:
    path: Path
    template: str
    cases: list[Case]
    content_hash: str = ""  # of the file's bytes, like a template's: an evaluation names its version


def load_dataset(path: Path | str, template: Template) -> Dataset:
    """The cases of a CSV or JSONL file, checked against `template`, or a DatasetError."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in DATASET_SUFFIXES:
        raise DatasetError([f"{path}: a dataset must be a .csv or .jsonl file"])
    try:
        data = path.read_bytes()
        text = data.decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise DatasetError([f"{path}: cannot read the dataset: {reason}"]) from None
    problems: list[str] = []
    if suffix == ".csv":
        rows = _known_columns(path, _csv_rows(path, text, problems), template, problems)
    else:
        rows = _jsonl_rows(path, text, problems)
    cases: list[Case] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        case = _case(path, line, row, template, len(cases) + 1, problems)
        if case is None:
            continue
        if case.id in seen:
            problems.append(f"{location(path, line)}: id {case.id!r} already used on line {seen[case.id]}")
        seen[case.id] = line
        cases.append(case)
    if not rows and not problems:
        problems.append(f"{path}: the dataset has no cases")
    if problems:
        raise DatasetError(problems)
    return Dataset(path=path, template=template.name, cases=cases, content_hash=content_hash(data))


def _known_columns(
    path: Path, rows: list[tuple[int, dict[str, Any]]], template: Template, problems: list[str]
) -> list[tuple[int, dict[str, Any]]]:
    """Report each unknown CSV column once (on the header line), then leave it out of the rows."""
    columns = list(rows[0][1]) if rows else []
    unknown = [
        c for c in columns
        if c not in template.variables and c != ID_COLUMN and c not in EXPECT_COLUMNS
    ]
    for column in unknown:
        declared = ", ".join(template.variables) or "no variables"
        problems.append(
            f"{location(path, 1)}: unknown column {column!r}: template {template.name!r} declares "
            f"{declared}; other columns: {ID_COLUMN}, {', '.join(EXPECT_COLUMNS)}"
        )
    return [(line, {k: v for k, v in row.items() if k not in unknown}) for line, row in rows]


def _csv_rows(path: Path, text: str, problems: list[str]) -> list[tuple[int, dict[str, Any]]]:
    # csv's own line splitting: str.splitlines would also split inside cells on U+2028, U+0085, \f…
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return []
    except csv.Error as exc:
        problems.append(f"{location(path, 1)}: not valid CSV: {exc}")
        return []
    if any(not name.strip() for name in header):
        problems.append(f"{location(path, 1)}: the header has an empty column name")
    header = [name.strip() for name in header]
    for name in {n for n in header if n and header.count(n) > 1}:
        problems.append(f"{location(path, 1)}: column {name!r} appears twice in the header")
    rows: list[tuple[int, dict[str, Any]]] = []
    end = reader.line_num
    try:
        for cells in reader:
            start, end = end + 1, reader.line_num
            if not cells or all(not c.strip() for c in cells):
                continue
            if len(cells) > len(header):
                problems.append(
                    f"{location(path, start)}: {len(cells)} cells but the header has {len(header)} columns"
                )
                continue
            # An empty cell means "not given": CSV cannot tell it from an empty string.
            padded = cells + [""] * (len(header) - len(cells))
            rows.append((start, {h: (c if c != "" else None) for h, c in zip(header, padded, strict=True) if h}))
    except csv.Error as exc:
        problems.append(f"{location(path, reader.line_num)}: not valid CSV: {exc}")
    return rows


def _jsonl_rows(path: Path, text: str, problems: list[str]) -> list[tuple[int, dict[str, Any]]]:
    rows: list[tuple[int, dict[str, Any]]] = []
    # "\n" only: str.splitlines would also split on U+2028, U+0085, \f… which JSON allows in strings.
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{location(path, number)}: not valid JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(row, dict):
            problems.append(f"{location(path, number)}: each line must be a JSON object, got {type(row).__name__}")
            continue
        rows.append((number, row))
    return rows


def _case(
    path: Path, line: int, row: dict[str, Any], template: Template, number: int, problems: list[str]
) -> Case | None:
    where = location(path, line)
    before = len(problems)
    for name in row:
        if name.startswith("expect_") and name not in EXPECT_COLUMNS:
            problems.append(f"{where}: unknown expectation {name!r} (known: {', '.join(EXPECT_COLUMNS)})")
    values = {k: v for k, v in row.items() if k != ID_COLUMN and not k.startswith("expect_")}
    bound, found = template.check_values(values)
    problems.extend(f"{where}: {problem}" for problem in found)
    expect = _expectations(where, row, problems)
    if len(problems) > before or expect is None:
        return None
    given = {name: bound[name] for name, value in values.items() if value is not None}
    case_id = row.get(ID_COLUMN)
    return Case(
        id=str(case_id) if case_id not in (None, "") else f"#{number}",
        line=line,
        values=given,
        expect=expect,
    )


def _expectations(where: str, row: dict[str, Any], problems: list[str]) -> Expectations | None:
    contains = row.get("expect_contains")
    regex = row.get("expect_regex")
    json_valid = row.get("expect_json")
    ok = True
    if contains is None:
        contains = []
    elif isinstance(contains, str):
        contains = [contains]
    elif not (isinstance(contains, list) and all(isinstance(c, str) for c in contains)):
        problems.append(f"{where}: expect_contains must be a string or a list of strings")
        ok = False
    if regex is not None:
        try:
            re.compile(str(regex))
        except re.error as exc:
            problems.append(f"{where}: expect_regex {regex!r} is not a valid regular expression: {exc}")
            ok = False
    if isinstance(json_valid, str):
        lowered = json_valid.strip().lower()
        if lowered not in _TRUE | _FALSE:
            problems.append(f"{where}: expect_json must be true or false, got {json_valid!r}")
            ok = False
        json_valid = lowered in _TRUE
    elif json_valid is not None and not isinstance(json_valid, bool):
        problems.append(f"{where}: expect_json must be true or false, got {json_valid!r}")
        ok = False
    if not ok:
        return None
    return Expectations(
        contains=contains, regex=None if regex is None else str(regex), json_valid=bool(json_valid)
    )
