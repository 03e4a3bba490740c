"""Text that every encoder accepts: lone surrogates repaired before they reach a provider or a page.

    repair_surrogates("hi \\ud800 there")   # 'hi \\ufffd there'
    repair_strings({"a": ["\\udfff"]})      # {'a': ['\\ufffd']}

A Python `str` can hold a lone UTF-16 surrogate (`\\ud800`): JSON's `"\\ud800"` escape decodes to one,
and so do undecodable bytes in a command-line argument (`surrogateescape`). No UTF-8 encoder takes
it, so a provider SDK, a database or a page fails on it far from where it came in. Repaired where
text enters (the run request, the tool's API door), it becomes U+FFFD, the replacement character;
a well-formed surrogate pair becomes the one character it stands for.
"""

from __future__ import annotations

import re
from typing import Any

REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")


def has_surrogates(text: str) -> bool:
    return _SURROGATE.search(text) is not None


def repair_surrogates(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD (a pair joined into its character)."""
    if _SURROGATE.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def repair_strings(value: Any, depth: int = 64) -> Any:
    """`value` (JSON-like: dicts, lists, strings) with every string and key repaired; containers
    nested deeper than `depth` are returned as they are (the caller bounds nesting itself)."""
    if isinstance(value, str):
        return repair_surrogates(value)
    if depth <= 0:
        return value
    if isinstance(value, dict):
        return {repair_strings(k, depth - 1): repair_strings(v, depth - 1) for k, v in value.items()}
    if isinstance(value, list):
        return [repair_strings(v, depth - 1) for v in value]
    if isinstance(value, tuple):
        return tuple(repair_strings(v, depth - 1) for v in value)
    return value
