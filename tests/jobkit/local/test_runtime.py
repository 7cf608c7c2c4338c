"""The embedded runtime's own helpers."""

from __future__ import annotations

import uuid

from jobkit.local import runtime


def test_new_ids_are_version_4_uuids_in_their_usual_text() -> None:
    ids = [runtime.new_id() for _ in range(2000)]
    for text in ids:
        parsed = uuid.UUID(text)
        assert (str(parsed), parsed.version, parsed.variant) == (text, 4, uuid.RFC_4122)
    assert len(set(ids)) == len(ids)
    assert {text[19] for text in ids} == set("89ab")  # every variant digit turns up
