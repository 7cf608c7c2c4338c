"""The fast conversions: each agrees with pyrsistent's public API or the reference JSON encoder."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyrsistent import pmap, pvector

from jobkit import _frozen, instants
from tests.jobkit import strategies

keys = st.text(max_size=8)
instants_ = strategies.utc_datetimes() | strategies.utc_datetimes().map(
    lambda at: at.astimezone(timezone(timedelta(hours=5, minutes=30)))
)
values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | instants_,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)


@given(values)
def test_to_json_writes_what_the_reference_encoder_writes(value: Any) -> None:
    frozen = _frozen.freeze(value)
    reference = _frozen.ENCODER.encode(frozen)
    assert _frozen.to_json(frozen) == reference
    assert _frozen.to_json(frozen, shared=True) == reference
    assert _frozen.to_json(frozen, shared=True) == reference  # from the remembered text
    assert _frozen.encode(frozen) == reference


def test_remembered_texts_survive_the_cache_being_cleared() -> None:
    parts = [pmap({"n": n, "at": datetime(2030, 1, 1, tzinfo=UTC)}) for n in range(3000)]
    texts = [_frozen.to_json(part, shared=True) for part in parts]  # clears it twice over
    assert texts == [_frozen.ENCODER.encode(part) for part in parts]
    assert [_frozen.to_json(part, shared=True) for part in parts] == texts


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (pmap({"x": math.nan}), ValueError),
        (pvector([math.inf]), ValueError),
        (pmap({"x": object()}), TypeError),
        (pmap({"x": {1, 2}}), TypeError),
    ],
)
def test_to_json_refuses_what_the_reference_encoder_refuses(
    value: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        _frozen.ENCODER.encode(value)
    with pytest.raises(error):
        _frozen.to_json(value)
    with pytest.raises(error):
        _frozen.to_json(value, shared=True)


def test_non_string_keys_are_written_as_the_reference_encoder_writes_them() -> None:
    inner: dict[Any, Any] = {2.5: "c", False: "d"}
    outer: dict[Any, Any] = {1: "a", None: "b", "c": pvector([pmap(inner)])}
    value = pmap(outer)
    assert _frozen.to_json(value) == _frozen.ENCODER.encode(value)


def test_nesting_deeper_than_python_frames_encodes_as_deep_as_the_reference() -> None:
    value: Any = "bottom"
    for _ in range(220):  # within the C encoder's reach, beyond that of the Python one
        value = pvector([pmap({"down": value})])
    for whole in (value, pmap({"deep": value})):
        try:
            reference = _frozen.ENCODER.encode(whole)
        except RecursionError:  # a deeper stack than usual here: no worse than it, then
            with pytest.raises(RecursionError):
                _frozen.to_json(whole)
        else:
            assert _frozen.to_json(whole) == reference
            assert _frozen.to_json(whole, shared=True) == reference


@given(st.dictionaries(keys, values, max_size=30))
def test_the_direct_map_functions_agree_with_pyrsistent(initial: dict[str, Any]) -> None:
    value = pmap(initial)
    before = dict(value.iteritems())
    assert _frozen.pairs(value) == list(value.iteritems())
    for key in initial:
        assert _frozen.get(value, key) is value[key]
    assert _frozen.get(value, "\x00absent") is None
    assert _frozen.get(value, "\x00absent", value) is value
    assert dict(value.iteritems()) == before  # never changed in place


def test_the_layout_check_passes_on_this_pyrsistent() -> None:
    assert _frozen._LAYOUT  # else every fast path above quietly falls back


def test_instants_inside_values_are_written_as_instants_format_writes_them() -> None:
    at = datetime(2030, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert _frozen.to_json(pmap({"at": at})) == '{"at":"%s"}' % instants.format(at)  # noqa: UP031
