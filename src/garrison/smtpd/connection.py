"""Buffered I/O for one SMTP connection: command lines, data chunks, replies.

`Connection` reads from the socket in large chunks into its own buffer,
so a pipelined group of commands (RFC 2920) costs one read system call.
It queues replies until the input buffer runs dry, so the replies to one
group leave in one write. Every wait for input has a timeout. Memory is
bounded: a command line longer than the limit is discarded, never stored
whole, and data is handed out in chunks of at most `CHUNK_SIZE` bytes.
"""

from __future__ import annotations

import asyncio
import math

from garrison.net.streams import buffered_size, discard_buffered
from garrison.smtpd.limits import DataRateMeter, SessionTooLong

# Bytes requested from the socket per read, and the largest data chunk
# handed to a receiver.
CHUNK_SIZE = 64 * 1024

# Seconds a client may take to read its replies. Postfix applies its
# smtpd_timeout of 300 s to writes too.
WRITE_TIMEOUT = 300.0


class ConnectionClosed(Exception):
    """The client closed the connection (EOF or reset)."""


class LineTooLong(Exception):
    """A command line exceeded the limit; the whole line has been discarded."""


class Connection:
    """The reader and writer of one client connection with their buffers."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.reader = reader
        self.writer = writer
        self._buffer = bytearray()
        # Offset up to which _buffer is known to contain no LF.
        self._scanned = 0
        self._replies: list[bytes] = []
        # Event-loop time at which every wait for input or for the client to
        # read replies raises SessionTooLong.
        self.deadline = math.inf
        # Set while message content is read, so slow content raises
        # DataRateTooLow; see `measure_data_rate`.
        self.data_rate: DataRateMeter | None = None

    # -- input ---------------------------------------------------------------

    async def read_line(self, timeout: float, max_length: int) -> bytes:
        """Return the next line without its line end (CRLF or LF).

        Raises LineTooLong after discarding a line longer than `max_length`
        (line end included), TimeoutError when no complete line arrives in
        `timeout` seconds, and ConnectionClosed at EOF. The timeout covers
        the whole line, so a client that sends one byte at a time cannot
        stretch a command past it.
        """
        loop = asyncio.get_running_loop()
        give_up = loop.time() + timeout
        discarding = False
        while True:
            end = self._buffer.find(b"\n", self._scanned)
            if end >= 0:
                line = bytes(self._buffer[: end + 1])
                del self._buffer[: end + 1]
                self._scanned = 0
                if discarding or len(line) > max_length:
                    raise LineTooLong()
                return line[:-2] if line.endswith(b"\r\n") else line[:-1]

            if len(self._buffer) > max_length:
                # RFC 5321 §4.5.3.1.4: the line is over the limit; drop what we
                # have and keep reading only to find where it ends.
                discarding = True
                self._buffer.clear()
            self._scanned = len(self._buffer)
            remaining = give_up - loop.time()
            if remaining <= 0:
                raise TimeoutError()
            await self._fill(remaining)

    async def read_chunk(self, max_size: int, timeout: float) -> bytes:
        """Return between 1 and `max_size` bytes: buffered input first.

        Raises TimeoutError and ConnectionClosed like `read_line`. While a
        data rate is measured, the bytes returned count toward it.
        """
        if not self._buffer:
            await self._fill(timeout, min(max_size, CHUNK_SIZE))
        size = min(max_size, len(self._buffer), CHUNK_SIZE)
        chunk = bytes(self._buffer[:size])
        del self._buffer[:size]
        self._scanned = 0
        if self.data_rate is not None:
            self.data_rate.count(len(chunk))
        return chunk

    def measure_data_rate(self, min_rate: int, window: float) -> None:
        """Start measuring the content rate; 0 bytes/s turns the check off."""
        if min_rate > 0:
            now = asyncio.get_running_loop().time()
            self.data_rate = DataRateMeter(min_rate, window, now)

    def stop_data_rate(self) -> None:
        """Stop measuring the content rate (the content has been read)."""
        self.data_rate = None

    def unread(self, data: bytes) -> None:
        """Put bytes back in front of the buffer (input that follows a message)."""
        if data:
            self._buffer[:0] = data
            self._scanned = 0

    def has_pending_input(self) -> bool:
        """Return whether the client has sent bytes that were not consumed yet."""
        return bool(self._buffer) or buffered_size(self.reader) > 0

    def discard_pending_input(self) -> int:
        """Drop every unconsumed input byte and return how many there were."""
        dropped = len(self._buffer) + discard_buffered(self.reader)
        self._buffer.clear()
        self._scanned = 0
        return dropped

    async def _fill(self, timeout: float, size: int = CHUNK_SIZE) -> None:
        # RFC 2920 §3.2: the replies to a pipelined group may be held until
        # the input is exhausted, and must be sent before waiting for more.
        if self._replies:
            await self.flush()
        loop = asyncio.get_running_loop()
        give_up = loop.time() + timeout
        while True:
            # The wait ends at the earliest of the read timeout, the session
            # deadline and the end of the data rate window. Only the first
            # two end the read; a window whose rate was met starts the next.
            now = loop.time()
            if now >= self.deadline:
                raise SessionTooLong()
            wake = min(give_up, self.deadline)
            if self.data_rate is not None:
                self.data_rate.check(now)
                wake = min(wake, self.data_rate.window_end)
            if now >= give_up:
                raise TimeoutError()
            try:
                async with asyncio.timeout_at(wake):
                    data = await self.reader.read(size)
                break
            except TimeoutError:
                continue
            except ConnectionError as exc:
                raise ConnectionClosed() from exc
        if not data:
            raise ConnectionClosed()
        self._buffer += data

    # -- output --------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Queue encoded reply bytes; they are written by the next flush."""
        self._replies.append(data)

    async def flush(self) -> None:
        """Write the queued replies and wait until the transport accepts them.

        A client that stops reading cannot hold the session: the wait ends
        with TimeoutError after WRITE_TIMEOUT seconds, or with
        SessionTooLong at the session deadline.
        """
        if self._replies:
            data = (
                self._replies[0] if len(self._replies) == 1 else b"".join(self._replies)
            )
            self._replies.clear()
            self.writer.write(data)
        transport = self.writer.transport
        if transport.get_write_buffer_size() == 0 and not transport.is_closing():
            # Everything went out at once, the usual case: nothing to wait for.
            return
        loop = asyncio.get_running_loop()
        timeout = min(WRITE_TIMEOUT, self.deadline - loop.time())
        try:
            async with asyncio.timeout(max(timeout, 0)):
                await self.writer.drain()
        except ConnectionError as exc:
            raise ConnectionClosed() from exc
        except TimeoutError:
            if loop.time() >= self.deadline:
                raise SessionTooLong() from None
            raise

    def write_now(self, data: bytes) -> None:
        """Write queued replies and `data` to the transport without waiting."""
        self._replies.append(data)
        self.writer.write(b"".join(self._replies))
        self._replies.clear()

    def abandon_output(self) -> None:
        """Drop queued replies (the transport is no longer usable)."""
        self._replies.clear()

    async def close(self) -> None:
        """Flush what can be flushed and close the transport."""
        try:
            if self._replies and not self.writer.is_closing():
                self.writer.write(b"".join(self._replies))
            self._replies.clear()
            self.writer.close()
            async with asyncio.timeout(5):
                await self.writer.wait_closed()
        except (ConnectionError, TimeoutError, OSError):
            pass
