"""Evaluation datasets: one case per row, checked against the template before anything runs.

CSV (a header row) or JSONL (one JSON object a line). Columns/keys:

- a template variable's name: its value for this case (an empty CSV cell or a JSON null means
  "not given": the variable's default applies, and a required one is a problem);
- `id` (optional): the case's name in results; default `#1`, `#2`, …;
- `expect_contains`: a substring the answer must contain (case-sensitive; in JSONL also a list);
- `expect_regex`: a regular expression the answer must match somewhere (searched like `re.search`
  with `re.MULTILINE`, but on RE2: linear time; a backreference or lookaround is refused — see
  `llmtool.checks.patterns`; write `(?i)` for case-insensitive);
- `expect_json`: true/false — the answer must be valid JSON (one ``` fence allowed);
- `assert_*` (`ASSERT_COLUMNS`): assertions on this case's run, see `llmtool.evaluation.assertions`:
  `assert_latency_s`, `assert_first_token_s`, `assert_cost_usd`, `assert_tokens`, `assert_equals`,
  `assert_contains_any`, `assert_contains_all`, `assert_not_contains` (values separated by `|`, or
  a JSON list) and `assert_judge` (a rubric).

Expectations and assertions are checked in addition to the template's own validation rules and
assertions. Every problem (unknown column, missing required variable, a value of the wrong type, a
bad JSON line, a bad regex, a bad assertion) is reported as `file:line: problem`, all of them at
once (the first `MAX_KEPT_PROBLEMS`, then a count).

A dataset is read as a stream and refused as soon as it passes a limit, each named with the value
found: `MAX_FILE_BYTES` of file, `MAX_COLUMNS` columns (CSV header, JSONL keys), `MAX_ROWS` cases,
`MAX_CELL_CHARS` characters in one cell or JSON string, `MAX_ROW_CHARS` characters in one row, and
`MAX_DEPTH` levels of JSON nesting. Every check is linear in the file's size. A server reads an
uploaded file with `load_dataset_async` (in a checking process, stopped at a time limit);
`load_dataset` is the same reading, in the caller's thread.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import dataclasses
import hashlib
import io
import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Any, BinaryIO, cast

from pydantic import BaseModel, ConfigDict, Field

from llmtool.checks.patterns import CompileBudget, PatternBudgetExceeded, PatternError, compile_pattern
from llmtool.errors import InvalidRequestError
from llmtool.evaluation.assertion_kinds import AssertionSpec
from llmtool.evaluation.assertions import ASSERT_COLUMNS, assertions_from_row
from llmtool.templates.errors import location
from llmtool.templates.loader import in_folder, leads_outside, link_refused
from llmtool.templates.template import Template
from llmtool.validation import parse_json_answer

DATASET_SUFFIXES = (".csv", ".jsonl")
ID_COLUMN = "id"
EXPECT_COLUMNS = ("expect_contains", "expect_regex", "expect_json")
_ASSERT = "assert_"
_MAX_PROBLEMS = 20  # shown in the error's message
MAX_KEPT_PROBLEMS = 100  # kept in `problems`; the rest are counted
# A JSON string has exactly one way to match (a character is either [^"\\] or the end of an escape):
# no backtracking. Both are used only to measure a line json.loads found too deeply nested.
_JSON_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"?')
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_NESTING = {"[": 1, "{": 1, "]": -1, "}": -1}
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0", ""}

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_COLUMNS = 200
MAX_ROWS = 5_000
MAX_CELL_CHARS = 100_000
MAX_ROW_CHARS = 1_000_000
MAX_DEPTH = 32
DATASET_TIME_LIMIT = 10.0  # seconds to read a dataset in a checking process
DATASET_PATTERN_BUDGET = 2.0  # seconds of compiling all the expect_regex patterns of one file
_INT_DIGITS = sys.get_int_max_str_digits()
_CHUNK = 250  # cases built between two turns of the event loop (~4 ms)


class DatasetError(InvalidRequestError):
    """The dataset cannot be used; `problems` lists each one as 'file:line: what is wrong' (the
    first MAX_KEPT_PROBLEMS, then '… and N more problems'); `omitted` counts those left out."""

    def __init__(self, problems: list[str], omitted: int = 0) -> None:
        problems = list(problems)
        if len(problems) > MAX_KEPT_PROBLEMS:
            omitted += len(problems) - MAX_KEPT_PROBLEMS
            problems = problems[:MAX_KEPT_PROBLEMS]
        if omitted and not problems[-1].startswith("… and "):
            problems.append(f"… and {omitted} more problems")
        shown = problems[:_MAX_PROBLEMS]
        hidden = len(problems) - len(shown) + (omitted - 1 if omitted else 0)
        if hidden > 0:
            shown.append(f"… and {hidden} more problems")
        super().__init__("\n".join(shown))
        self.problems = problems
        self.omitted = omitted


class _Problems(list[str]):
    """The problems found so far: all are counted, the first MAX_KEPT_PROBLEMS kept."""

    omitted = 0

    def append(self, problem: str) -> None:
        if len(self) < MAX_KEPT_PROBLEMS:
            super().append(problem)
        else:
            self.omitted += 1

    def extend(self, problems: Any) -> None:
        for problem in problems:
            self.append(problem)


def _found(problems: list[str]) -> int:
    """How many problems were found, kept or not."""
    return len(problems) + getattr(problems, "omitted", 0)


class _Refused(Exception):
    """A limit was passed: reading stops; the message is the whole verdict."""


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
        return [problem for _, run in self.stages(text) for problem in run()]

    def stages(self, text: str) -> Iterator[tuple[str, Callable[[], list[str]]]]:
        """The checks one by one, each named for a message (see ValidationRules.stages)."""
        if self.contains:
            yield "expect_contains", lambda: [f"expected to contain {s!r}" for s in self.contains if s not in text]
        if self.regex is not None:
            regex = self.regex
            yield f"expect_regex /{regex}/", lambda: _regex_problems(regex, text)
        if self.json_valid:
            yield "expect_json", lambda: _json_expected(text)


def _regex_problems(regex: str, text: str) -> list[str]:
    try:
        found = compile_pattern(regex).search(text) is not None
    except PatternError as exc:  # refused when the dataset was read; here for an Expectations made by hand
        return [str(exc)]
    return [] if found else [f"expected to match /{regex}/"]


def _json_expected(text: str) -> list[str]:
    try:
        parse_json_answer(text)
    except json.JSONDecodeError as exc:
        return [f"expected JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"]
    return []


class Case(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    line: int = Field(description="Where the case starts in the dataset file.")
    values: dict[str, Any] = Field(description="The variables given (typed); defaults fill the rest.")
    expect: Expectations = Field(default_factory=Expectations)
    assertions: list[AssertionSpec] = Field(default_factory=list, description="Its assert_* columns.")


@dataclass(frozen=True)
class Dataset:
    path: Path
    template: str
    cases: list[Case]
    content_hash: str = ""  # of the file's bytes, like a template's: an evaluation names its version


def load_dataset(path: Path | str, template: Template, *, pattern_budget: float = DATASET_PATTERN_BUDGET
                 ) -> Dataset:
    """The cases of a CSV or JSONL file, checked against `template`, or a DatasetError.
    `pattern_budget`: seconds that compiling all its expect_regex patterns may take."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in DATASET_SUFFIXES:
        raise DatasetError([f"{path}: a dataset must be a .csv or .jsonl file"])
    folder = template.path.parent  # the prompts folder: datasets shipped there must stay in it
    if in_folder(path, folder) and leads_outside(path, folder):
        raise DatasetError([f"{path}: {link_refused(folder, 'dataset')}"])
    problems = _Problems()  # reading the file, then the columns, then the cases: the order of old
    columns, case_problems = _Problems(), _Problems()
    try:
        with path.open("rb") as raw:
            size = _file_size(raw)
            if size > MAX_FILE_BYTES:
                raise _Refused(f"{path}: the file is {_megabytes(size)}; at most {_megabytes(MAX_FILE_BYTES)} allowed")
            source = _HashingReader(raw, path)
            reading = cast(BinaryIO, io.BufferedReader(source, buffer_size=1 << 16))
            if suffix == ".csv":
                rows = _known_columns(path, _csv_rows(path, reading, problems), template, columns)
            else:
                rows = _jsonl_rows(path, reading, problems)
            budget = CompileBudget(pattern_budget, what="the expect_regex patterns of the dataset")
            cases = _cases(path, rows, template, case_problems, budget)
            source.drain()
    except _Refused as refused:
        raise DatasetError([str(refused)]) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise DatasetError([f"{path}: cannot read the dataset: {reason}"]) from None
    problems.extend([*columns, *case_problems])
    problems.omitted += columns.omitted + case_problems.omitted
    if not cases and not problems and not problems.omitted:
        problems.append(f"{path}: the dataset has no cases")
    if problems:
        raise DatasetError(list(problems), problems.omitted)
    return Dataset(path=path, template=template.name, cases=cases, content_hash=source.hexdigest())


async def load_dataset_async(path: Path | str, template: Template, *, time_limit: float = DATASET_TIME_LIMIT
                             ) -> Dataset:
    """`load_dataset` off the event loop: in a checking process, stopped after `time_limit` seconds
    (a DatasetError says so). Where no process can start, it reads inline (see llmtool.checks.pool)."""
    from llmtool.checks import CheckError, CheckTimedOut, shared_pool

    path = Path(path)
    # what the worker needs of the template: its name and variables (compiled Jinja does not pickle)
    shape = dataclasses.replace(template, prompt_part=cast(Any, None), system_part=None, source="")
    try:
        kind, value = await shared_pool().run("load_dataset", path, shape, time_limit=time_limit, what="the dataset")
    except CheckTimedOut:
        raise DatasetError([f"{path}: reading the dataset took longer than {time_limit:g} s and was stopped"]) from None
    except CheckError as error:
        raise DatasetError([f"{path}: the dataset could not be read: {error.message}"]) from None
    if kind == "problems":
        problems, omitted = value
        raise DatasetError(problems, omitted)
    digest, rows = value
    cases: list[Case] = []
    for start in range(0, len(rows), _CHUNK):  # checked already: built without validating, a chunk at a time
        cases += [
            Case.model_construct(id=case_id, line=line, values=values,
                                 expect=Expectations.model_construct(contains=contains, regex=regex, json_valid=json),
                                 assertions=list(assertions))
            for case_id, line, values, contains, regex, json, assertions in rows[start:start + _CHUNK]
        ]
        await asyncio.sleep(0)
    return Dataset(path=path, template=template.name, cases=cases, content_hash=digest)


def _file_size(raw: BinaryIO) -> int:
    import os

    try:
        return os.fstat(raw.fileno()).st_size
    except (OSError, ValueError):
        return 0


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


class _HashingReader(io.RawIOBase):
    """The file's bytes as they are read: hashed (the dataset's version) and counted (a file that
    grows past MAX_FILE_BYTES while read is refused all the same)."""

    def __init__(self, raw: BinaryIO, path: Path) -> None:
        self._raw, self._path = raw, path
        self._hash = hashlib.sha256()
        self._size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        count = len(data)
        buffer[:count] = data
        self._hash.update(data)
        self._size += count
        if self._size > MAX_FILE_BYTES:
            raise _Refused(f"{self._path}: the file is larger than {_megabytes(MAX_FILE_BYTES)}, the most allowed")
        return count

    def drain(self) -> None:
        while self._raw.read(1 << 16):  # what the parser did not need, for the hash
            pass

    def hexdigest(self) -> str:
        """The first 12 hex digits of the file's sha256, as `llmtool.templates.loader.content_hash`."""
        return self._hash.hexdigest()[:12]


def _cases(path: Path, rows: Iterator[tuple[int, dict[str, Any]]], template: Template, problems: _Problems,
           budget: CompileBudget) -> list[Case]:
    cases: list[Case] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        case = _case(path, line, row, template, len(cases) + 1, problems, budget)
        if case is None:
            continue
        if case.id in seen:
            problems.append(f"{location(path, line)}: id {case.id!r} already used on line {seen[case.id]}")
        seen[case.id] = line
        cases.append(case)
    return cases


def _too_many_rows(path: Path, found: int) -> _Refused:
    return _Refused(f"{path}: the dataset has {found:,} rows; at most {MAX_ROWS:,} allowed")


def _known_columns(
    path: Path, rows: Iterator[tuple[int, dict[str, Any]]], template: Template, problems: _Problems
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Report each unknown CSV column once (on the header line), then leave it out of the rows."""
    first = next(rows, None)
    if first is None:
        return
    columns = list(first[1])
    known = {*template.variables, ID_COLUMN, *EXPECT_COLUMNS, *ASSERT_COLUMNS}
    unknown = {c for c in columns if c not in known}
    declared = ", ".join(template.variables) or "no variables"
    for column in (c for c in columns if c in unknown):
        if column.startswith(_ASSERT):
            problems.append(f"{location(path, 1)}: {_unknown_assertion(column)}")
            continue
        problems.append(
            f"{location(path, 1)}: unknown column {column!r}: template {template.name!r} declares "
            f"{declared}; other columns: {ID_COLUMN}, {', '.join(EXPECT_COLUMNS)}, assert_* (assertions)"
        )
    yield first[0], {k: v for k, v in first[1].items() if k not in unknown}
    for line, row in rows:
        yield line, {k: v for k, v in row.items() if k not in unknown}


class _Lines:
    """The file's text line by line for csv.reader, refusing a row longer than MAX_ROW_CHARS (a
    quoted cell may span lines, so the count goes on until the reader hands the row over)."""

    def __init__(self, path: Path, reading: BinaryIO) -> None:
        self._path = path
        self._text = io.TextIOWrapper(reading, encoding="utf-8-sig", newline="")
        self.row_chars = 0
        self.line = 0

    def __iter__(self) -> Iterator[str]:
        while line := self._text.readline(MAX_ROW_CHARS + 1):
            self.line += 1
            self.row_chars += len(line)
            if self.row_chars > MAX_ROW_CHARS:
                raise _Refused(f"{location(self._path, self.line)}: the row is longer than {MAX_ROW_CHARS:,} "
                               "characters, the most allowed")
            yield line


def _csv_rows(path: Path, reading: BinaryIO, problems: _Problems) -> Iterator[tuple[int, dict[str, Any]]]:
    # csv's own line splitting: str.splitlines would also split inside cells on U+2028, U+0085, \f…
    lines = _Lines(path, reading)
    reader = csv.reader(iter(lines))
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        problems.append(f"{location(path, 1)}: not valid CSV: {_csv_error(exc)}")
        return
    lines.row_chars = 0
    if len(header) > MAX_COLUMNS:
        raise _Refused(f"{location(path, 1)}: the header has {len(header):,} columns; at most {MAX_COLUMNS:,} allowed")
    if any(not name.strip() for name in header):
        problems.append(f"{location(path, 1)}: the header has an empty column name")
    header = [name.strip() for name in header]
    for name, count in Counter(header).items():
        if name and count > 1:
            problems.append(f"{location(path, 1)}: column {name!r} appears twice in the header")
    rows = 0
    end = reader.line_num
    try:
        for cells in reader:
            lines.row_chars = 0
            start, end = end + 1, reader.line_num
            if not cells or all(not c.strip() for c in cells):
                continue
            rows += 1
            if rows > MAX_ROWS:
                raise _too_many_rows(path, rows + _count_rows(reader, lines))
            if len(cells) > len(header):
                problems.append(
                    f"{location(path, start)}: {len(cells)} cells but the header has {len(header)} columns"
                )
                continue
            for column, cell in zip(header, cells, strict=False):
                if len(cell) > MAX_CELL_CHARS:
                    raise _Refused(f"{location(path, start)}: the cell of column {column!r} has {len(cell):,} "
                                   f"characters; at most {MAX_CELL_CHARS:,} allowed")
            # An empty cell means "not given": CSV cannot tell it from an empty string.
            padded = cells + [""] * (len(header) - len(cells))
            yield start, {h: (c if c != "" else None) for h, c in zip(header, padded, strict=True) if h}
    except csv.Error as exc:
        problems.append(f"{location(path, reader.line_num)}: not valid CSV: {_csv_error(exc)}")


def _count_rows(reader: Iterator[list[str]], lines: _Lines) -> int:
    """The rows left (for the message of a dataset with too many): csv's C reader, nothing kept."""
    count = 0
    try:
        for cells in reader:
            lines.row_chars = 0
            count += any(c.strip() for c in cells)
    except csv.Error:
        pass
    return count


def _csv_error(exc: csv.Error) -> str:
    if "field larger than field limit" in str(exc):
        return f"a cell is longer than {csv.field_size_limit():,} characters (at most {MAX_CELL_CHARS:,} allowed)"
    return str(exc)


def _jsonl_rows(path: Path, reading: BinaryIO, problems: _Problems) -> Iterator[tuple[int, dict[str, Any]]]:
    rows = 0
    number = 0
    # "\n" only: str.splitlines would also split on U+2028, U+0085, \f… which JSON allows in strings.
    while raw := reading.readline(MAX_ROW_CHARS * 4 + 1):  # UTF-8: up to 4 bytes a character
        number += 1
        if not raw.endswith(b"\n") and len(raw) > MAX_ROW_CHARS * 4:
            raise _Refused(f"{location(path, number)}: the line is longer than {MAX_ROW_CHARS:,} characters, "
                           "the most allowed")
        line = (raw.removeprefix(codecs.BOM_UTF8) if number == 1 else raw).decode("utf-8")
        line = line.removesuffix("\n").removesuffix("\r")
        if len(line) > MAX_ROW_CHARS:
            raise _Refused(f"{location(path, number)}: the line has {len(line):,} characters; "
                           f"at most {MAX_ROW_CHARS:,} allowed")
        if not line.strip():
            continue
        rows += 1
        if rows > MAX_ROWS:
            rest = sum(1 for more in reading if more.strip())
            raise _too_many_rows(path, rows + rest)
        where = location(path, number)
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: not valid JSON: {exc.msg} (column {exc.colno})")
            continue
        except RecursionError:
            raise _Refused(f"{where}: the JSON is nested {_bracket_depth(line):,} levels deep; "
                           f"at most {MAX_DEPTH} allowed") from None
        except ValueError:  # a number of more than 4,300 digits: Python's limit on int conversion
            problems.append(f"{where}: not valid JSON: a number has more than {_INT_DIGITS:,} digits")
            continue
        if not isinstance(row, dict):
            problems.append(f"{where}: each line must be a JSON object, got {type(row).__name__}")
            continue
        if len(row) > MAX_COLUMNS:
            raise _Refused(f"{where}: the object has {len(row):,} keys; at most {MAX_COLUMNS:,} allowed")
        _check_json_value(where, row)
        yield number, row


def _check_json_value(where: str, row: dict[str, Any]) -> None:
    """Refuse nesting deeper than MAX_DEPTH and strings longer than MAX_CELL_CHARS, without recursion."""
    stack: list[tuple[Any, int, str]] = [(row, 1, "")]
    while stack:
        value, depth, key = stack.pop()
        if isinstance(value, str):
            if len(value) > MAX_CELL_CHARS:
                raise _Refused(f"{where}: the value of {key!r} has {len(value):,} characters; "
                               f"at most {MAX_CELL_CHARS:,} allowed")
        elif isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                raise _Refused(f"{where}: the JSON is nested {_depth(value, depth)} levels deep; "
                               f"at most {MAX_DEPTH} allowed")
            items = value.items() if isinstance(value, dict) else ((key, v) for v in value)
            for name, item in items:
                if isinstance(name, str) and len(name) > MAX_CELL_CHARS:
                    raise _Refused(f"{where}: a key has {len(name):,} characters; at most {MAX_CELL_CHARS:,} allowed")
                stack.append((item, depth + 1, name if depth == 1 else key))


def _bracket_depth(line: str) -> int:
    """How deeply the brackets of a JSON text nest (outside its strings): linear, mostly in C."""
    brackets = _NOT_BRACKETS.sub("", _JSON_STRINGS.sub("", line))
    return max(accumulate(map(_NESTING.__getitem__, brackets), initial=0))


def _depth(value: Any, depth: int) -> int:
    """How deep `value` (found at `depth`) goes, without recursion."""
    deepest = depth
    stack = [(value, depth)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def _case(
    path: Path, line: int, row: dict[str, Any], template: Template, number: int, problems: list[str],
    budget: CompileBudget | None = None,
) -> Case | None:
    where = location(path, line)
    before = _found(problems)
    for name in row:
        if name.startswith("expect_") and name not in EXPECT_COLUMNS:
            problems.append(f"{where}: unknown expectation {name!r} (known: {', '.join(EXPECT_COLUMNS)})")
        elif name.startswith(_ASSERT) and name not in ASSERT_COLUMNS:
            problems.append(f"{where}: {_unknown_assertion(name)}")
    values = {k: v for k, v in row.items() if k != ID_COLUMN and not k.startswith(("expect_", _ASSERT))}
    bound, found = template.check_values(values)
    problems.extend(f"{where}: {problem}" for problem in found)
    expect = _expectations(where, row, problems, budget or CompileBudget(DATASET_PATTERN_BUDGET))
    assertions = _assertions(where, row, problems)
    if _found(problems) > before or expect is None or assertions is None:
        return None
    given = {name: bound[name] for name, value in values.items() if value is not None}
    case_id = row.get(ID_COLUMN)
    return Case(
        id=str(case_id) if case_id not in (None, "") else f"#{number}",
        line=line,
        values=given,
        expect=expect,
        assertions=assertions,
    )


def _unknown_assertion(column: str) -> str:
    return f"unknown assertion column {column!r} (known: {', '.join(ASSERT_COLUMNS)})"


def _assertions(where: str, row: dict[str, Any], problems: list[str]) -> list[AssertionSpec] | None:
    """The row's assert_* cells as assertions; None (and a problem) when one is not usable."""
    cells = {name: value for name, value in row.items() if name in ASSERT_COLUMNS}
    if not cells:
        return []
    try:
        return assertions_from_row(cells)
    except ValueError as exc:
        problems.append(f"{where}: {exc}")
        return None


def _expectations(where: str, row: dict[str, Any], problems: list[str], budget: CompileBudget
                  ) -> Expectations | None:
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
            budget.compile(str(regex))
        except PatternBudgetExceeded as exc:
            raise _Refused(f"{where}: {exc}") from None
        except PatternError as exc:
            problems.append(f"{where}: expect_regex {str(exc).removeprefix('pattern ')}")
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
