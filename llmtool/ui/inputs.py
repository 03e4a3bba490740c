"""What the tool's handlers take from a field, and a sentence for what they do not.

    tokens = whole_number(value, "max output tokens", low=1, high=1_000_000, zero="the model's default")
    temperature = number(text, "temperature", low=0, high=2, empty="the model's default")
    variables = json_object(value, "variables")

A handler gets what the page or an API caller sent (`api_guard` has checked its type against the
component: a Number is a finite number, a Checkbox true or false…); these helpers turn it into what
the service takes, or raise an InvalidRequestError naming the field, what is allowed and what came,
which the handler shows the way its tab shows errors. The values' own rules (a temperature from 0
to 2, a prompt that is not empty) stay in the service's request model, for every surface.
"""

from __future__ import annotations

import math
from typing import Any

from llmtool.errors import InvalidRequestError

MAX_SHOWN = 40  # characters of a refused value quoted back


def shown(value: Any) -> str:
    """A refused value, briefly: quoted text, a number, or what kind of thing it is."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        text = repr(value)
        return text if len(text) <= MAX_SHOWN else f"a number of {len(text):,} digits"
    if isinstance(value, str):
        text = value if len(value) <= MAX_SHOWN else value[:MAX_SHOWN] + "…"
        return repr(text)
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__}"


def _range(low: float, high: float) -> str:
    return f"from {low:,} to {high:,}"


def whole_number(value: Any, what: str, *, low: int, high: int, zero: str | None = None) -> int | None:
    """`value` as a whole number from `low` to `high`. Nothing (None, empty text) is None, and so
    is 0 when `zero` says what 0 means ("the model's default"). A number sent as text is read."""
    allowed = f"a whole number {_range(low, high)}" + (f" (0: {zero})" if zero else "")
    number = _read_number(value, what, allowed)
    if number is None or (zero and number == 0):
        return None
    if not number.is_integer() or not low <= number <= high:
        raise InvalidRequestError(f"{what} must be {allowed}; got {shown(value)}")
    return int(number)


def number(value: Any, what: str, *, low: float, high: float, empty: str | None = None) -> float | None:
    """`value` as a number from `low` to `high` (text is read, a decimal comma too); nothing (None,
    empty text) is None, what `empty` says it means."""
    allowed = f"a number {_range(low, high)}" + (f" (empty: {empty})" if empty else "")
    read = _read_number(value, what, allowed)
    if read is None:
        return None
    if not low <= read <= high:
        raise InvalidRequestError(f"{what} must be {allowed}; got {shown(value)}")
    return read


def _read_number(value: Any, what: str, allowed: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise InvalidRequestError(f"{what} must be {allowed}; got {shown(value)}")
    if isinstance(value, str):
        try:
            read = float(value.strip().replace(",", "."))
        except ValueError:
            raise InvalidRequestError(f"{what} must be {allowed}; got {shown(value)}") from None
    elif isinstance(value, (int, float)):
        try:
            read = float(value)
        except OverflowError:  # an integer of hundreds of digits
            raise InvalidRequestError(f"{what} must be {allowed}; got {shown(value)}") from None
    else:
        raise InvalidRequestError(f"{what} must be {allowed}; got {shown(value)}")
    if not math.isfinite(read):
        raise InvalidRequestError(f"{what} must be {allowed}; got {shown(read)}")
    return read


def text(value: Any, what: str) -> str:
    """`value` as text: None is empty; a number is written out; anything else is refused."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return str(value)
    raise InvalidRequestError(f"{what} must be text; got {shown(value)}")


def flag(value: Any, what: str) -> bool:
    """`value` as true or false (None is false)."""
    if value is None or isinstance(value, bool):
        return bool(value)
    raise InvalidRequestError(f"{what} must be true or false; got {shown(value)}")


def json_object(value: Any, what: str) -> dict[str, Any]:
    """`value` as a JSON object of names to values (None is an empty one)."""
    if value is None:
        return {}
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return value
    raise InvalidRequestError(f"{what} must be a JSON object of names to values, like {{\"text\": \"…\"}}; "
                              f"got {shown(value)}")


def names(value: Any, what: str) -> list[str]:
    """`value` as a list of names (None is an empty list, one name a list of it)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [item for item in value if item.strip()]
    raise InvalidRequestError(f"{what} must be a list of names; got {shown(value)}")
