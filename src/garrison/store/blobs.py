"""Content-addressed blob store on local files.

A message is written once, as received (with the trace headers we prepend),
while its SHA-256 is computed. Up to `memory_limit` bytes stay in memory;
a larger message spills to a temporary file in the spool directory, so
memory per message stays bounded. `BlobWriter.commit()` writes the file
(when still in memory), fsyncs it, links it to `blobs/ab/cd/<sha256>` and
fsyncs the directory, so a committed blob survives a crash. Identical
messages share one file. Every file-system call that can block on the
journal (creating, fsyncing, renaming) runs in a worker thread, never on
the event loop, except the creation of the spool file for a large message.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

_BUFFER = 256 * 1024
MEMORY_LIMIT = 1024 * 1024


@dataclass(frozen=True, slots=True)
class BlobRef:
    """A blob: its SHA-256 hex id and size in bytes.

    `data` is the content when the blob was small enough to stay in memory,
    so the delivery pipeline can analyse it without reading the file back.
    A `pending` blob has only that in-memory content and no file yet; it
    must go through `BlobStore.persist` before any row refers to it.
    """

    blob_id: str
    size: int
    data: bytes | None = field(default=None, compare=False, repr=False)
    pending: bool = field(default=False, compare=False)


def _reuse(target: Path) -> bool:
    """Return True when the blob file exists, refreshing its modification time.

    The fresh time keeps the garbage collector (`garrison.store.gc`) away
    from a file that a new message is about to use. When the collector has
    just taken the file away, the caller writes it anew.
    """
    try:
        os.utime(target)
    except FileNotFoundError:
        return False
    return True


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobWriter:
    """Accumulates one blob; call `commit()` or `abort()` exactly once."""

    def __init__(self, store: BlobStore, memory_limit: int = MEMORY_LIMIT) -> None:
        self._store = store
        self._memory_limit = memory_limit
        self._memory: bytearray | None = bytearray()
        self._temp: Path | None = None
        self._file: BinaryIO | None = None
        self._hash = hashlib.sha256()
        self._closed = False
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append `data` to the blob."""
        if self._closed:
            raise ValueError("blob writer is already closed")
        self._hash.update(data)
        self.size += len(data)
        if self._memory is not None:
            self._memory += data
            if len(self._memory) <= self._memory_limit:
                return
            self._spill()
            return
        assert self._file is not None
        self._file.write(data)

    def _spill(self) -> None:
        assert self._memory is not None
        self._temp = self._store.spool_dir / f"{secrets.token_hex(12)}.tmp"
        self._file = open(self._temp, "xb", buffering=_BUFFER)  # noqa: SIM115
        self._file.write(self._memory)
        self._memory = None

    async def commit(self, durable: bool = True) -> BlobRef:
        """Make the blob durable and return its reference.

        With `durable=False`, a blob still in memory is not written: the
        reference is `pending`, for a caller that may replace the content
        before storing it (the delivery pipeline adds header fields) and so
        saves writing and syncing a file that nothing would use. A blob
        that spilled to the spool is always made durable.
        """
        if self._closed:
            raise ValueError("blob writer is already closed")
        self._closed = True
        blob_id = self._hash.hexdigest()
        loop = asyncio.get_running_loop()
        if self._memory is not None:
            data = bytes(self._memory)
            self._memory = None
            if not durable:
                return BlobRef(blob_id, self.size, data, pending=True)
            await loop.run_in_executor(None, self._store._install_bytes, data, blob_id)
            return BlobRef(blob_id, self.size, data)
        assert self._file is not None and self._temp is not None
        file, self._file = self._file, None
        try:
            await loop.run_in_executor(None, self._store._install, file, self._temp, blob_id)
        except BaseException:
            self._temp.unlink(missing_ok=True)
            raise
        return BlobRef(blob_id, self.size)

    def abort(self) -> None:
        """Discard the partial blob. Safe to call more than once."""
        self._closed = True
        self._memory = None
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._temp is not None:
            self._temp.unlink(missing_ok=True)


class BlobStore:
    """Message bytes on local files, addressed by SHA-256."""

    def __init__(self, blob_dir: Path, spool_dir: Path) -> None:
        self.blob_dir = blob_dir
        self.spool_dir = spool_dir
        blob_dir.mkdir(parents=True, exist_ok=True)
        spool_dir.mkdir(parents=True, exist_ok=True)

    def path(self, blob_id: str) -> Path:
        """Return the file path of a blob (it may not exist)."""
        return self.blob_dir / blob_id[:2] / blob_id[2:4] / blob_id

    def create(self) -> BlobWriter:
        """Start a new blob."""
        return BlobWriter(self)

    def _install(self, file: BinaryIO, temp: Path, blob_id: str) -> None:
        file.flush()
        os.fsync(file.fileno())
        file.close()
        target = self.path(blob_id)
        if _reuse(target):
            temp.unlink()
            return
        created = self._ensure_parent(target)
        os.replace(temp, target)
        self._sync_parents(target, created)

    def _install_bytes(self, data: bytes, blob_id: str) -> None:
        target = self.path(blob_id)
        if _reuse(target):
            return
        created = self._ensure_parent(target)
        temp = self.spool_dir / f"{secrets.token_hex(12)}.tmp"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, target)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        self._sync_parents(target, created)

    @staticmethod
    def _ensure_parent(target: Path) -> bool:
        if target.parent.is_dir():
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        return True

    def _sync_parents(self, target: Path, created: bool) -> None:
        _fsync_dir(target.parent)
        if created:
            _fsync_dir(target.parent.parent)
            _fsync_dir(self.blob_dir)

    async def persist(self, blob: BlobRef) -> BlobRef:
        """Write a pending blob's file durably; return the committed reference."""
        if not blob.pending:
            return blob
        assert blob.data is not None
        await asyncio.get_running_loop().run_in_executor(
            None, self._install_bytes, blob.data, blob.blob_id
        )
        return BlobRef(blob.blob_id, blob.size, blob.data)

    async def put(self, data: bytes) -> BlobRef:
        """Store `data` durably and return its reference."""
        writer = self.create()
        try:
            writer.write(data)
        except BaseException:
            writer.abort()
            raise
        return await writer.commit()

    def read(self, blob_id: str) -> bytes:
        """Return the whole blob."""
        with open(self.path(blob_id), "rb") as file:
            return file.read()

    def read_prefix(self, blob_id: str, size: int) -> bytes:
        """Return at most the first `size` bytes of the blob."""
        with open(self.path(blob_id), "rb") as file:
            return file.read(size)

    def open_ref(self, blob: BlobRef) -> BinaryIO:
        """Open a blob for reading from its in-memory copy, or else its file."""
        if blob.data is not None:
            return io.BytesIO(blob.data)
        return self.open(blob.blob_id)

    def open(self, blob_id: str) -> BinaryIO:
        """Open the blob for reading; the caller closes it."""
        return open(self.path(blob_id), "rb")  # noqa: SIM115

    def cleanup_spool(self) -> int:
        """Remove temporary files left by a crash; return how many."""
        removed = 0
        for temp in self.spool_dir.glob("*.tmp"):
            temp.unlink(missing_ok=True)
            removed += 1
        # A file the garbage collector had set aside when the process died
        # goes back: the next collection removes it if it is still unused.
        for aside in self.spool_dir.glob("*.gc"):
            target = self.path(aside.name.split(".", 1)[0])
            self._ensure_parent(target)
            os.replace(aside, target)
        return removed
