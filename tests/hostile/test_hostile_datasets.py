"""Hostile datasets: each limit is checked while the file is read, refused quickly with a message
naming the limit and what was found, in time linear in the file; the event loop keeps ticking."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from llmtool.checks import CheckPool
from llmtool.evaluation import DatasetError, load_dataset, load_dataset_async
from llmtool.evaluation.dataset import MAX_ROWS
from llmtool.templates import Template, load_template
from tests.helpers import write_template
from tests.hostile.conftest import ticking

TEMPLATE = """---
model: demo:echo
variables:
  word: {}
  count: {type: integer, default: 1}
---
{{ word }} {{ count }}
"""


def _deep_jsonl(depth: int) -> str:
    return '{"word": "x", "count": ' + "[" * depth + "]" * depth + "}\n"


# name → (file name, content, what the single problem says)
HOSTILE: dict[str, tuple[str, Callable[[], str | bytes], str]] = {
    "30,000 columns": ("wide.csv", lambda: ",".join(f"c{i}" for i in range(30_000)) + "\n" + "x," * 29_999 + "x\n",
                       "wide.csv:1: the header has 30,000 columns; at most 200 allowed"),
    "100,000 rows": ("long.csv", lambda: "word\n" + "".join(f"w{i}\n" for i in range(100_000)),
                     "long.csv: the dataset has 100,000 rows; at most 5,000 allowed"),
    "100,000 JSONL lines": ("long.jsonl", lambda: "".join(f'{{"word": "w{i}"}}\n' for i in range(100_000)),
                            "long.jsonl: the dataset has 100,000 rows; at most 5,000 allowed"),
    "JSONL nested 100,000 deep": ("deep.jsonl", lambda: _deep_jsonl(100_000),
                                  "deep.jsonl:1: the JSON is nested 100,001 levels deep; at most 32 allowed"),
    "JSONL nested 40 deep": ("deep40.jsonl", lambda: _deep_jsonl(40),
                             "deep40.jsonl:1: the JSON is nested 41 levels deep; at most 32 allowed"),
    "JSONL 300 keys": ("keys.jsonl", lambda: json.dumps({f"k{i}": 1 for i in range(300)}) + "\n",
                       "keys.jsonl:1: the object has 300 keys; at most 200 allowed"),
    "CSV cell of 120,000 characters": ("cell.csv", lambda: "word\n" + "x" * 120_000 + "\n",
                                       "cell.csv:2: the cell of column 'word' has 120,000 characters; at most 100,000 allowed"),
    "CSV cell past csv's own limit": ("cell2.csv", lambda: 'word\n"' + "x" * 500_000 + '"\n',
                                      "cell2.csv:2: not valid CSV: a cell is longer than 131,072 characters (at most 100,000 allowed)"),
    "CSV row of many quoted lines": ("row.csv", lambda: "word,count\n" + ",".join(['"' + "x\n" * 500 + '"'] * 2000) + "\n",
                                     "row.csv:498506: the row is longer than 1,000,000 characters, the most allowed"),
    "JSONL string of 200,000 characters": ("cell.jsonl", lambda: json.dumps({"word": "x" * 200_000}) + "\n",
                                           "cell.jsonl:1: the value of 'word' has 200,000 characters; at most 100,000 allowed"),
    "JSONL line of 2,000,000 characters": ("line.jsonl", lambda: json.dumps({"word": ["x" * 50_000] * 40}) + "\n",
                                           "line.jsonl:1: the line has 2,000,"),
    "a file of 11 MB": ("big.csv", lambda: "word\n" + ("x" * 99 + "\n") * 115_000,
                        "big.csv: the file is 11.0 MB; at most 10.0 MB allowed"),
    "a number of 5,000 digits": ("int.jsonl", lambda: '{"word": "x", "count": ' + "9" * 5000 + "}\n",
                                 "int.jsonl:1: not valid JSON: a number has more than 4,300 digits"),
    "not UTF-8": ("latin.csv", lambda: "word\ncaf\xe9\n".encode("latin-1"),
                  "latin.csv: cannot read the dataset: 'utf-8' codec can't decode byte 0xe9"),
}


@pytest.fixture
def template(tmp_path: Path) -> Template:
    return load_template(write_template(tmp_path, "t", TEMPLATE))


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize(("name", "content", "message"), HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_dataset_is_refused_quickly_naming_the_limit(
    tmp_path: Path, template: Template, name: str, content: Callable[[], str | bytes], message: str
) -> None:
    path = _write(tmp_path, name, content())
    started = time.perf_counter()
    with pytest.raises(DatasetError) as refused:
        load_dataset(path, template)
    elapsed = time.perf_counter() - started
    [problem] = refused.value.problems
    assert problem.startswith(f"{tmp_path}/{message}"), problem
    assert elapsed < 2.0  # linear, and stopped at the limit: measured ~0.01-0.4 s


@pytest.mark.parametrize(("name", "content", "message"), HOSTILE.values(), ids=HOSTILE.keys())
async def test_hostile_dataset_read_off_the_event_loop(
    tmp_path: Path, template: Template, pool: CheckPool, name: str, content: Callable[[], str | bytes], message: str
) -> None:
    path = _write(tmp_path, name, content())
    async with ticking() as ticker:
        with pytest.raises(DatasetError) as refused:
            await load_dataset_async(path, template)
    [problem] = refused.value.problems
    assert problem.startswith(f"{tmp_path}/{message}"), problem
    assert ticker.max_lag < 1.0


async def test_a_dataset_at_the_limits_loads_off_the_event_loop(
    tmp_path: Path, template: Template, pool: CheckPool
) -> None:
    rows = "".join(f"c{i},{'x' * 1900},{i},c{i}$\n" for i in range(MAX_ROWS))
    path = _write(tmp_path, "full.csv", "id,word,count,expect_regex\n" + rows)  # 9.6 MB, 5,000 cases
    async with ticking() as ticker:
        dataset = await load_dataset_async(path, template)
    assert len(dataset.cases) == MAX_ROWS
    assert dataset.cases[7].values == {"word": "x" * 1900, "count": 7} and dataset.cases[7].expect.regex == "c7$"
    assert dataset.content_hash == load_dataset(path, template).content_hash
    assert ticker.max_lag < 1.0


def test_many_bad_rows_keep_a_bounded_list_of_problems(tmp_path: Path, template: Template) -> None:
    path = _write(tmp_path, "bad.csv", "word,count\n" + "".join(f"w{i},lots\n" for i in range(3000)))
    with pytest.raises(DatasetError) as refused:
        load_dataset(path, template)
    problems = refused.value.problems
    assert len(problems) == 101 and problems[-1] == "… and 2900 more problems"
    assert str(refused.value).endswith("… and 2980 more problems")


def test_costly_regexes_are_refused_within_the_compile_budget(tmp_path: Path, template: Template) -> None:
    rows = "".join(f"w{i},\\w{{45}}x{i}\n" for i in range(1000))  # each ~20 ms to compile
    path = _write(tmp_path, "costly.csv", "word,expect_regex\n" + rows)
    started = time.perf_counter()
    with pytest.raises(DatasetError, match=r"the expect_regex patterns of the dataset take more than 0\.2 s to prepare"):
        load_dataset(path, template, pattern_budget=0.2)
    assert time.perf_counter() - started < 1.0
