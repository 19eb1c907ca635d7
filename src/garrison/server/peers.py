"""Change notifications between the worker processes of one server.

Each worker binds a Unix datagram socket `run/worker-N.sock` in the data
directory. After a local commit it sends the changed mailbox ids to every
other worker's socket; a receiving worker announces them to its own IMAP
sessions through `MailStore.notify_changed`. Datagrams are best effort: a
lost one only delays an IDLE update until the session's next command, as
sessions also re-read the mailbox state on each command.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

from garrison.store import MailStore

log = logging.getLogger("garrison.server")
_MAX_DATAGRAM = 60000


class PeerNotifier:
    """Sends and receives mailbox change datagrams for one worker."""

    def __init__(self, run_dir: Path, index: int, count: int, store: MailStore) -> None:
        self.run_dir = run_dir
        self.path = run_dir / f"worker-{index}.sock"
        self.peers = [
            str(run_dir / f"worker-{other}.sock") for other in range(count) if other != index
        ]
        self.store = store
        self._sock: socket.socket | None = None

    def start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(self.path))
        sock.setblocking(False)
        self._sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._receive)
        self.store.add_commit_listener(self.broadcast)

    def stop(self) -> None:
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        self.path.unlink(missing_ok=True)

    def _receive(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data = self._sock.recv(_MAX_DATAGRAM)
            except BlockingIOError:
                return
            try:
                ids = {int(part) for part in data.split(b",") if part}
            except ValueError:
                continue
            self.store.notify_changed(ids)

    def broadcast(self, mailbox_ids: set[int]) -> None:
        """Send the changed mailbox ids to every other worker."""
        if self._sock is None or not mailbox_ids:
            return
        ids = sorted(mailbox_ids)
        # 5000 ids of at most 11 bytes each stay below the datagram limit.
        for start in range(0, len(ids), 5000):
            payload = ",".join(str(i) for i in ids[start : start + 5000]).encode()
            for peer in self.peers:
                try:
                    self._sock.sendto(payload, peer)
                except (BlockingIOError, ConnectionRefusedError, FileNotFoundError):
                    continue
