"""New job ids (`commands.new_id`): version 4 UUIDs, made a batch at a time, never shared with
a forked child."""

from __future__ import annotations

import os
import uuid

from jobkit.worker import commands


def test_new_ids_are_version_4_uuids_in_their_usual_text() -> None:
    ids = [commands.new_id() for _ in range(2000)]
    for text in ids:
        parsed = uuid.UUID(text)
        assert (str(parsed), parsed.version, parsed.variant) == (text, 4, uuid.RFC_4122)
    assert len(set(ids)) == len(ids)
    assert {text[19] for text in ids} == set("89ab")  # every variant digit turns up


def test_a_forked_child_never_hands_out_its_parents_ids() -> None:
    commands.new_id()  # the parent now holds ids made but not handed out
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids, then leave at once
        os.close(reader)
        os.write(writer, " ".join(commands.new_id() for _ in range(3)).encode())
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as pipe:
        child = set(pipe.read().split())
    os.waitpid(pid, 0)
    parent = {commands.new_id() for _ in range(300)}  # beyond what one read made
    assert len(child) == 3
    assert not child & parent
