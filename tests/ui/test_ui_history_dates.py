"""History's date filter: any date a person types gets a range or a sentence, never an exception."""

import pytest

from llmtool.ui.history_render import date_range


def test_a_day_range_covers_both_days() -> None:
    since, until = date_range("2025-01-01", "2025-01-02")
    assert since is not None and until is not None and until - since == pytest.approx(2 * 86400, abs=3600)


@pytest.mark.parametrize(("start", "end", "message"), [
    ("0001-01-01", "", "Date from: 0001-01-01 is too far from today"),
    ("yesterday", "", "Date from: 'yesterday' is not a date"),
    ("2025-02-01", "2025-01-01", "is after Date to"),
])
def test_a_date_that_cannot_be_used_is_a_sentence(start: str, end: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        date_range(start, end)


def test_the_last_day_there_is_means_no_upper_bound() -> None:
    assert date_range("", "9999-12-31") == (None, None)
