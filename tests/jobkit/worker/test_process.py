"""A worker process's settings (`tune_process`), checked in a fresh interpreter: they change
the whole process, so never this one."""

from __future__ import annotations

import subprocess
import sys
import textwrap

PROBE = textwrap.dedent(
    """
    import gc, sys, weakref
    from jobkit.worker.process import SWITCH_INTERVAL, YOUNG_COLLECTION_EVERY, tune_process

    middle, oldest = gc.get_threshold()[1:]
    assert sys.getswitchinterval() != SWITCH_INTERVAL
    tune_process()
    assert gc.get_threshold() == (YOUNG_COLLECTION_EVERY, middle, oldest), gc.get_threshold()
    assert sys.getswitchinterval() == SWITCH_INTERVAL
    assert gc.get_freeze_count() > 0  # start-up's objects are out of the collector's sight

    class Node:
        pass

    # Cyclic garbage is still collected, once enough has been allocated since.
    node = Node()
    node.self = node
    gone = weakref.ref(node)
    del node
    keep = [[] for _ in range(YOUNG_COLLECTION_EVERY * 2)]
    assert gone() is None, "a cycle outlived two young-collection thresholds"
    print("ok")
    """
)


def test_tune_process_sets_switches_freezes_start_up_and_still_collects_cycles() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
