"""Instants: the fixed-width text form, written and read back, with or without the caches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobkit import instants

offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
aware = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=offsets | st.just(UTC)
)


def reference(at: datetime) -> str:
    """The text form as first written: isoformat of the instant in UTC, with a `Z`."""
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


@given(aware)
def test_format_writes_the_fixed_width_utc_text(at: datetime) -> None:
    text = instants.format(at)
    assert text == reference(at)
    assert instants.format(at) == text  # remembered: the same again
    assert len(text) == len("2026-11-28T18:49:48.123456Z")


@given(aware)
def test_parse_reads_back_the_instant(at: datetime) -> None:
    text = instants.format(at)
    assert instants.parse(text) == at
    assert instants.parse(text).tzinfo is UTC
    assert instants.parse(text) == instants.parse(text)  # remembered: equal again


def test_format_of_the_extremes_and_of_a_subclass() -> None:
    class Later(datetime):
        pass

    for at in (
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2030, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        Later(2030, 5, 6, 7, 8, 9, 10, tzinfo=UTC),
    ):
        assert instants.format(at) == reference(at)


def test_many_formats_beyond_the_cache_stay_right() -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    moments = [start + timedelta(days=n % 3000, microseconds=n) for n in range(5000)]
    assert [instants.format(at) for at in moments] == [reference(at) for at in moments]


def test_parse_refuses_what_it_always_refused() -> None:
    with pytest.raises(ValueError, match="without a UTC offset"):
        instants.parse("2030-01-01T00:00:00")
    with pytest.raises(ValueError, match="without a UTC offset"):
        instants.parse("2030-01-01T00:00:00")  # an error is not remembered as a value
    with pytest.raises(ValueError, match="isoformat"):
        instants.parse("not an instant")


def test_plus_zero_is_the_same_instant() -> None:
    at = datetime(2030, 1, 1, tzinfo=UTC)
    assert instants.plus(at, 0) is at
    assert instants.plus(at, 0.0) == at
    assert instants.plus(at, 1.5) == at + timedelta(seconds=1.5)


@given(aware, st.sampled_from(["Z", "+00:00", " ", "T"]))
def test_a_parsed_text_formats_back_to_the_fixed_width_text(at: datetime, form: str) -> None:
    """Parsing remembers a text already in the fixed-width form as that instant's text;
    any other form of the instant still formats to the fixed-width one."""
    fixed = instants.format(at)
    if form == "+00:00":
        text = fixed[:-1] + "+00:00"
    elif form == " ":
        text = fixed[:10] + " " + fixed[11:]
    elif form == "T":
        text = at.isoformat(timespec="microseconds")  # in its own offset
    else:
        text = fixed
    assert instants.format(instants.parse(text)) == fixed


def test_plus_remembers_its_latest_sum_only_for_the_same_arguments() -> None:
    at = datetime(2030, 1, 1, tzinfo=UTC)
    lease = instants.plus(at, 30)
    assert instants.plus(at, 30) is lease
    assert instants.plus(at, 31) == at + timedelta(seconds=31)
    same = datetime(2030, 1, 1, tzinfo=UTC)  # equal, but another object
    assert instants.plus(same, 30) == lease
    assert instants.plus(at, 30.5) == at + timedelta(seconds=30.5)
