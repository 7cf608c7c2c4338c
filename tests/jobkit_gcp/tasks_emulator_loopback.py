"""Runs PyPI's Cloud Tasks emulator (`gcloud-tasks-emulator start ...`) listening on
127.0.0.1 only: the emulator binds every interface (`[::]`) itself. Run with the Python of
the emulator's own virtual environment; the arguments are the emulator's."""

from __future__ import annotations

from typing import Any

import grpc  # the emulator's environment has it
from gcloud_tasks_emulator import __main__ as emulator

_server = grpc.server


def _loopback_server(*args: Any, **kwargs: Any) -> Any:
    server = _server(*args, **kwargs)
    add = server.add_insecure_port
    server.add_insecure_port = lambda address: add(address.replace("[::]", "127.0.0.1"))
    return server


grpc.server = _loopback_server

if __name__ == "__main__":
    emulator.main()
