"""The embedded default's doorbell (`ports.Doorbell`): a Unix datagram socket per listener.

A listener (an idle worker, in any process on this machine) binds a socket in a folder
under the data folder, `<data>/doorbell/<pid>-<random>.sock`, and reads it from its event
loop. A ring, made after the commit that made work due, sends one byte to every socket
in the folder, and calls this process's own listeners back directly. The byte means
nothing: a listener that hears it looks at the store, which decides what is due.

Every way a ring can go astray is harmless, as a doorbell's must be: a socket whose queue
is full (its listener has rings waiting already, `EAGAIN`), a socket whose process died
without removing it (`ECONNREFUSED`: the ringer removes the file, which is how stale
sockets are cleaned up), or one that went away meanwhile. Listeners also poll the store
now and then (`WorkerConfig.poll_seconds`), for rings lost all the same and for writers
that do not ring.

Ringing costs one `sendto` per listener in other processes, plus an `os.stat` of the
folder: its listing is read again only when the folder changed. Rings made in one turn of
the event loop (a burst of submissions) are sent once, at the end of the turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Final

log = logging.getLogger("jobkit.local.doorbell")

SUFFIX: Final = ".sock"
# A socket's address must fit `sun_path` (108 bytes on Linux, 104 on macOS); a longer
# path is reached through the folder's file descriptor, `/proc/self/fd/N/name`.
_MAX_ADDRESS: Final = 100
# The folder's mtime may not change for a second change within the file system's clock
# tick: a listing read so soon after a change is read again at the next ring.
_SETTLED_NS: Final = 1_000_000_000


class SocketDoorbell:
    """`ports.Doorbell` on a folder of Unix datagram sockets; one per process and folder.

    `close()` sends a ring still pending and closes the ringing socket; listeners are
    closed by whoever listens.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self._sender: socket.socket | None = None
        self._folder_fd: int | None = None
        self._mine: dict[str, _Listening] = {}  # this process's listeners, by file name
        self._peers: list[str] = []  # the other listeners' addresses, as last read
        self._listed: int | None = None  # the folder's mtime when `_peers` was read
        self._pending: asyncio.Handle | None = None

    def ring(self, at: datetime | None = None) -> None:
        """Wake every listener now, whatever `at`: a listener reads the due time from the
        store (`JobStore.next_wakeup`) and sleeps until it."""
        for listening in list(self._mine.values()):
            listening.on_ring()
        if self._pending is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop: ring at once
            self._send()
            return
        self._pending = loop.call_soon(self._send)

    async def listen(self, on_ring: Callable[[], None]) -> _Listening:
        loop = asyncio.get_running_loop()
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{os.getpid()}-{secrets.token_hex(4)}{SUFFIX}"
        address = self._address(name)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind(address)
        except BaseException:
            sock.close()
            raise
        listening = _Listening(self, name, address, sock, on_ring, loop)
        self._mine[name] = listening
        loop.add_reader(sock.fileno(), listening.readable)
        return listening

    def close(self) -> None:
        """Send a pending ring now, then close the ringing socket. Idempotent."""
        if self._pending is not None:
            self._pending.cancel()
            self._send()
        if self._sender is not None:
            self._sender.close()
            self._sender = None
        if self._folder_fd is not None and not self._mine:
            os.close(self._folder_fd)
            self._folder_fd = None

    # -- ringing -----------------------------------------------------------------------

    def _send(self) -> None:
        self._pending = None
        peers = self._listeners()
        if not peers:
            return
        if self._sender is None:
            self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sender.setblocking(False)
        for address in peers:
            try:
                self._sender.sendto(b"\x01", address)
            except (BlockingIOError, InterruptedError):
                pass  # its queue is full: it has rings waiting already
            except ConnectionRefusedError:  # nobody reads it: its process is gone
                with contextlib.suppress(OSError):
                    os.unlink(address)
                self._listed = None
            except FileNotFoundError:  # gone meanwhile
                self._listed = None
            except OSError as exc:  # anything else: this ring is lost, and that is harmless
                log.debug("a ring was not delivered: %s", exc, extra={"address": address})

    def _listeners(self) -> list[str]:
        """The addresses of the other processes' listeners, read again when the folder
        changed (or changed so recently that a second change might not show)."""
        try:
            changed = os.stat(self.folder).st_mtime_ns
        except OSError:  # no folder: nobody has listened yet
            return []
        if changed != self._listed or time.time_ns() - changed < _SETTLED_NS:
            try:
                names = [entry.name for entry in os.scandir(self.folder)]
            except OSError:
                return []
            self._peers = [
                self._address(name)
                for name in names
                if name.endswith(SUFFIX) and name not in self._mine
            ]
            self._listed = changed
        return self._peers

    def _address(self, name: str) -> str:
        path = os.path.join(self.folder, name)
        if len(os.fsencode(path)) <= _MAX_ADDRESS:
            return path
        if self._folder_fd is None:
            self._folder_fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        return f"/proc/self/fd/{self._folder_fd}/{name}"


class _Listening:
    """One listener's socket (`ports.Listener`), read on its event loop's thread."""

    def __init__(
        self,
        doorbell: SocketDoorbell,
        name: str,
        address: str,
        sock: socket.socket,
        on_ring: Callable[[], None],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.name = name
        self.address = address
        self.on_ring = on_ring
        self._doorbell = doorbell
        self._socket = sock
        self._loop = loop
        self._closed = False

    def readable(self) -> None:
        """Take every ring queued (several rings, one call), then call back."""
        try:
            while self._socket.recv(64):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            log.debug("reading rings failed: %s", exc)
        self.on_ring()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._doorbell._mine.pop(self.name, None)
        with contextlib.suppress(Exception):  # a closed loop has no readers left
            self._loop.remove_reader(self._socket.fileno())
        self._socket.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.address)


class InProcessDoorbell:
    """`ports.Doorbell` within one process: a ring calls this process's listeners back, and
    reaches no other process. For a runtime on stores with no folder to share (Firestore
    and Cloud Storage, until a doorbell of theirs is given), where other processes learn of
    work by their own doorbell or poll."""

    def __init__(self) -> None:
        self._listeners: dict[int, _Local] = {}

    def ring(self, at: datetime | None = None) -> None:
        for listener in list(self._listeners.values()):
            listener.on_ring()

    async def listen(self, on_ring: Callable[[], None]) -> _Local:
        listener = _Local(self, on_ring)
        self._listeners[id(listener)] = listener
        return listener

    def close(self) -> None:
        """Nothing to send or close: listeners are closed by whoever listens."""


class _Local:
    def __init__(self, doorbell: InProcessDoorbell, on_ring: Callable[[], None]) -> None:
        self._doorbell = doorbell
        self.on_ring = on_ring

    async def close(self) -> None:
        self._doorbell._listeners.pop(id(self), None)
