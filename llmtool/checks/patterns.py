"""Untrusted regular expressions on RE2: matching time linear in the text, whatever the pattern.

    regex = compile_pattern(r"^Answer: \\d+")        # PatternError (a ValueError) when refused
    regex.search(text)                               # a match or None, never a backtracking blow-up

Patterns from validation rules and datasets are written for Python's `re` and searched the way
llmtool always did: `re.search(pattern, text, re.MULTILINE)`. They are translated so that most
mean the same on RE2:

- `^` and `$` match at every line (multiline), as before;
- `\\d`, `\\w`, `\\s` (and `\\D`, `\\W`, `\\S` outside a `[...]`) keep Python's Unicode meaning
  (`\\p{Nd}`, letters/digits/underscore, Unicode white space);
- `\\Z` (end of text) becomes RE2's `\\z`; `\\uXXXX`, `\\UXXXXXXXX` and `\\N{NAME}` become code points;
  `{,n}` means `{0,n}`; `(?#comment)` is dropped.

Differences that remain (documented in the messages and here):

- refused up front, with the reason: backreferences (`\\1`, `(?P=name)`), lookahead/lookbehind
  (`(?=`, `(?!`, `(?<=`, `(?<!`), atomic groups and possessive quantifiers (`(?>`, `a++`),
  conditionals (`(?(1)…)`), the `(?x)`, `(?a)`, `(?u)`, `(?L)` flags, repetition counts above 1000,
  and patterns whose compiled form exceeds RE2's memory budget;
- `\\b`/`\\B` decide word boundaries on ASCII letters and digits only (Python: any Unicode letter),
  as do `\\W`/`\\S` inside a `[...]`;
- rare corners: `[[:alpha:]]` is a POSIX class on RE2 (Python: the characters `[:alph` and a `]`).
  Otherwise RE2 picks the same leftmost-first match as Python (`a|ab` finds "a"): whether a pattern
  matches, and the text a "forbidden pattern found" message quotes, are as before.

JSON Schema `pattern`/`patternProperties` use `flavor="ecma"`: no multiline, and `\\d`, `\\w`, `\\b`
ASCII as ECMA-262 (the schema's own regex dialect) says; Python's `re`, used by `jsonschema`
before, made them Unicode.
"""

from __future__ import annotations

import re
import threading
import time
import unicodedata
from collections import OrderedDict
from typing import Literal, Protocol

import re2  # type: ignore[import-untyped]  # google-re2 ships no type information

Flavor = Literal["python", "ecma"]
MAX_PATTERN_LENGTH = 4096  # characters
# Bytes for one compiled pattern (RE2's default is 8 MiB). Compiling takes time in proportion: at 1 MiB
# the costliest pattern takes ~20 ms (`\w{50}`: Unicode classes are big automata), at 8 MiB ~90 ms.
_MAX_MEMORY = 1 << 20
PATTERN_BUDGET = 0.1  # seconds of compiling for the patterns of one set of rules, declared on the event loop
_CACHE_SIZE = 1024

# Python's Unicode classes in RE2's syntax: as written outside a [...], and inside one.
_DIGIT = r"\p{Nd}"
_WORD = r"\p{L}\p{N}_"
_SPACE = r"\t\n\v\f\r\x{1c}-\x{20}\x{85}\p{Z}"
_OUTSIDE = {"d": _DIGIT, "D": r"\P{Nd}", "w": f"[{_WORD}]", "W": f"[^{_WORD}]", "s": f"[{_SPACE}]",
            "S": f"[^{_SPACE}]", "Z": r"\z"}
_INSIDE = {"d": _DIGIT, "D": r"\P{Nd}", "w": _WORD, "s": _SPACE}
_REPEAT_UP_TO = re.compile(r"\{,(\d+)\}")


class PatternError(ValueError):
    """A pattern that cannot be used: the message names it and says why."""


class PatternBudgetExceeded(PatternError):
    """Several patterns together took too long to compile (see CompileBudget)."""


class Match(Protocol):
    def group(self, index: int = 0) -> str: ...


class Regex(Protocol):
    def search(self, text: str) -> Match | None: ...


class Pattern:
    """A compiled pattern: `search` tolerates text that is not valid Unicode (lone surrogates)."""

    __slots__ = ("_compiled", "source")

    def __init__(self, source: str, compiled: Regex) -> None:
        self.source = source
        self._compiled = compiled

    def search(self, text: str) -> Match | None:
        try:
            return self._compiled.search(text)
        except UnicodeEncodeError:  # RE2 reads UTF-8; a lone surrogate (\ud800) has none
            return self._compiled.search(text.encode("utf-8", "surrogatepass").decode("utf-8", "replace"))

    def __repr__(self) -> str:
        return f"Pattern({self.source!r})"


_cache: OrderedDict[tuple[str, str], Pattern | PatternError] = OrderedDict()
_cache_lock = threading.Lock()


def compile_pattern(pattern: str, flavor: Flavor = "python") -> Pattern:
    """`pattern` compiled for RE2, or a PatternError naming it and saying why it cannot be used.
    Both are remembered (the last `_CACHE_SIZE` patterns): a pattern is compiled once a process."""
    key = (pattern, flavor)
    with _cache_lock:
        known = _cache.get(key)
        if known is not None:
            _cache.move_to_end(key)
    if known is None:
        try:
            known = _compile(pattern, flavor)
        except PatternError as refused:
            known = refused
        with _cache_lock:
            _cache[key] = known
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    if isinstance(known, PatternError):
        raise PatternError(*known.args)
    return known


def is_compiled(pattern: str, flavor: Flavor = "python") -> bool:
    """Whether `pattern` is compiled already (searching it now costs no compiling)."""
    with _cache_lock:
        return isinstance(_cache.get((pattern, flavor)), Pattern)


def check_pattern(pattern: str, flavor: Flavor = "python") -> None:
    """Refuse (PatternError) a pattern that RE2 cannot run."""
    compile_pattern(pattern, flavor)


class CompileBudget:
    """Compiling several patterns within `seconds` in all: a set of rules of 60 patterns like
    `\\w{50}x1`, `\\w{50}x2`… would otherwise hold the event loop for a second while declared."""

    def __init__(self, seconds: float = PATTERN_BUDGET, what: str = "the patterns") -> None:
        self.seconds, self.what = seconds, what
        self.left = seconds

    def compile(self, pattern: str, flavor: Flavor = "python") -> Pattern:
        started = time.perf_counter()
        try:
            compiled = compile_pattern(pattern, flavor)
        finally:
            self.left -= time.perf_counter() - started
        if self.left < 0:
            raise PatternBudgetExceeded(
                f"{self.what} take more than {self.seconds:g} s to prepare for linear-time matching "
                f"(stopped at {_shown(pattern)}): use fewer or simpler patterns (\\w, \\d and \\s match "
                "any script's letters, digits and spaces, and cost the most when repeated)"
            )
        return compiled


def _compile(pattern: str, flavor: Flavor) -> Pattern:
    if not isinstance(pattern, str):
        raise PatternError(f"pattern {pattern!r} must be a string")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternError(
            f"pattern {_shown(pattern)} is {len(pattern):,} characters long; at most {MAX_PATTERN_LENGTH:,} allowed"
        )
    try:
        translated = translate(pattern, flavor)
    except PatternError:
        raise
    except ValueError as exc:
        raise PatternError(f"pattern {_shown(pattern)} is not a valid regular expression: {exc}") from None
    options = re2.Options()
    options.log_errors = False
    options.never_capture = True  # only the whole match is ever shown: RE2's fastest engines apply
    options.max_mem = _MAX_MEMORY
    try:
        compiled = re2.compile(translated, options)
    except re2.error as exc:
        raise PatternError(_refusal(pattern, flavor, _text(exc))) from None
    return Pattern(pattern, compiled)


def _text(exc: Exception) -> str:
    detail = exc.args[0] if exc.args else str(exc)
    return detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)


def _shown(pattern: str) -> str:
    return repr(pattern if len(pattern) <= 80 else pattern[:77] + "…")


_UNSUPPORTED = (  # (what RE2's message or the pattern shows, why it cannot be used)
    (re.compile(r"\\[1-9]|\(\?P="), "backreferences (\\1, (?P=name)) are not supported"),
    (re.compile(r"\(\?<?[=!]"), "lookahead and lookbehind assertions ((?=, (?!, (?<=, (?<!) are not supported"),
    (re.compile(r"\(\?>|[*+?}]\+"), "atomic groups and possessive quantifiers ((?>…), a++) are not supported"),
    (re.compile(r"\(\?\("), "conditional groups ((?(1)…|…)) are not supported"),
    (re.compile(r"\(\?[a-zA-Z]*[xauL]"), "the flags (?x), (?a), (?u) and (?L) are not supported; (?i), (?m), (?s) are"),
)
_LINEAR = "patterns run on RE2, which matches in time linear in the text and has no backtracking"


def _refusal(pattern: str, flavor: Flavor, detail: str) -> str:
    where = f"pattern {_shown(pattern)}"
    if "repetition" in detail and ("size" in detail or "count" in detail):
        return f"{where} cannot be used: a repetition count above 1000 is not supported ({_LINEAR})"
    if "too large" in detail or "out of memory" in detail:
        return f"{where} cannot be used: it is too large for linear-time matching ({_LINEAR})"
    for sign, reason in _UNSUPPORTED:
        if sign.search(pattern):
            return f"{where} cannot be used: {reason} ({_LINEAR})"
    if flavor == "python":
        try:
            re.compile(pattern)  # compiling only, never matching: no backtracking here
        except re.error as exc:
            return f"{where} is not a valid regular expression: {exc}"
        return f"{where} cannot be used: RE2 does not support {detail} ({_LINEAR})"
    return f"{where} is not a valid regular expression: {detail}"


def translate(pattern: str, flavor: Flavor = "python") -> str:
    """`pattern` rewritten in RE2's syntax with the meaning it has in `flavor` (see the module)."""
    out: list[str] = ["(?m)"] if flavor == "python" else []
    i, n = 0, len(pattern)
    in_class = False
    class_start = 0
    while i < n:
        char = pattern[i]
        if char == "\\":
            if i + 1 >= n:
                raise PatternError(f"pattern {_shown(pattern)} is not a valid regular expression: it ends with \\")
            escape, length = _escape(pattern, i, flavor, in_class)
            out.append(escape)
            i += length
            continue
        if in_class:
            # "]" right after "[" or "[^" is a literal; anything else ends the class
            if char == "]" and i > class_start:
                in_class = False
            out.append(char)
            i += 1
            continue
        if char == "[":
            in_class = True
            class_start = i + 1
            if pattern.startswith("^", class_start):
                class_start += 1
            out.append(char)
            i += 1
            continue
        if char == "(" and pattern.startswith("(?#", i):
            end = pattern.find(")", i)
            if end < 0:
                raise PatternError(f"pattern {_shown(pattern)} is not a valid regular expression: missing ), "
                                   "unterminated comment")
            i = end + 1
            continue
        if char == "{" and flavor == "python" and (repeat := _REPEAT_UP_TO.match(pattern, i)):
            out.append(f"{{0,{repeat.group(1)}}}")
            i = repeat.end()
            continue
        out.append(char)
        i += 1
    return "".join(out)


def _escape(pattern: str, i: int, flavor: Flavor, in_class: bool) -> tuple[str, int]:
    """One escape at pattern[i] ("\\" + …) in RE2's syntax, and how many characters it took."""
    letter = pattern[i + 1]
    if flavor == "python":
        table = _INSIDE if in_class else _OUTSIDE
        if letter in table:
            return table[letter], 2
    if letter in "uU" and (flavor == "python" or letter == "u"):
        if flavor == "ecma" and pattern.startswith("{", i + 2):  # \u{1F600}
            end = pattern.find("}", i + 3)
            digits = pattern[i + 3:end] if end > 0 else ""
            if end < 0 or not digits or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise ValueError(f"bad escape {pattern[i:i + 3]}")
            return f"\\x{{{digits}}}", end + 1 - i
        width = 4 if letter == "u" else 8
        digits = pattern[i + 2:i + 2 + width]
        if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
            raise ValueError(f"incomplete escape \\{letter}{digits}")
        return f"\\x{{{digits}}}", 2 + width
    if letter == "N" and flavor == "python" and pattern.startswith("{", i + 2):
        end = pattern.find("}", i + 3)
        if end < 0:
            raise ValueError("missing }, unterminated name")
        try:
            code = ord(unicodedata.lookup(pattern[i + 3:end]))
        except KeyError:
            raise ValueError(f"undefined character name {pattern[i + 3:end]!r}") from None
        return f"\\x{{{code:X}}}", end + 1 - i
    if letter == "c" and flavor == "ecma" and i + 2 < len(pattern) and pattern[i + 2].isascii() \
            and pattern[i + 2].isalpha():
        return f"\\x{{{ord(pattern[i + 2]) % 32:02X}}}", 3
    return pattern[i:i + 2], 2
