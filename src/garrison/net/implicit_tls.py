"""Listeners with implicit TLS (IMAPS, POP3S, submissions) that log failed handshakes.

`asyncio.start_server(ssl=...)` does the TLS handshake before the handler
runs and drops a failed handshake without a word, so scanners and broken
clients left no trace. `start_tls_server` accepts plain connections
instead, stops reading at once so that no byte of the ClientHello is
consumed, and runs the handshake itself with `loop.start_tls`. A handshake
that fails or times out is logged as one `tls_failed` line with the client
address and the error; a completed one hands the streams to the handler as
`start_server` would.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import cast

from garrison.observability.log import event

log = logging.getLogger("garrison.net.tls")

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

# Seconds a client gets to complete the handshake, as asyncio's default.
HANDSHAKE_TIMEOUT = 60.0


class _HandshakeProtocol(asyncio.Protocol):
    """Holds a new plain connection until its TLS handshake is done."""

    def __init__(
        self,
        handler: Handler,
        context: ssl.SSLContext,
        listener: str,
        limit: int,
        tasks: set[asyncio.Task[None]],
    ) -> None:
        self.handler = handler
        self.context = context
        self.listener = listener
        self.limit = limit
        self.tasks = tasks
        # Bytes that arrived before the TLS layer took over the transport.
        self.early = bytearray()

    def data_received(self, data: bytes) -> None:
        self.early += data

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but they
        # have its methods.
        plain = cast(asyncio.Transport, transport)
        # Read nothing before the handshake takes over the socket.
        plain.pause_reading()
        task = asyncio.get_running_loop().create_task(self._handshake(plain))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _handshake(self, transport: asyncio.Transport) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=self.limit, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, self.handler, loop=loop)
        peer = transport.get_extra_info("peername") or ("", 0)
        started = loop.time()

        starting = asyncio.ensure_future(
            loop.start_tls(
                transport,
                protocol,
                self.context,
                server_side=True,
                ssl_handshake_timeout=HANDSHAKE_TIMEOUT,
            )
        )
        # uvloop starts reading after connection_made even when it paused
        # reading, so the ClientHello may already sit in `early`. Once
        # start_tls has queued the TLS layer's connection_made, queue the
        # early bytes to follow it, before any new read.
        await asyncio.sleep(0)
        loop.call_soon(self._replay, transport)
        try:
            secure = await starting
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as exc:
            transport.abort()
            event(
                log,
                "tls_failed",
                logging.WARNING,
                listener=self.listener,
                ip=peer[0],
                port=peer[1],
                error=_describe(exc, loop.time() - started),
            )
            return

        if secure is None:
            transport.abort()
            return
        # start_tls does not call connection_made on the stream protocol;
        # doing so creates the writer and starts the handler.
        protocol.connection_made(secure)

    def _replay(self, transport: asyncio.Transport) -> None:
        if not self.early or transport.is_closing():
            return
        data, self.early = bytes(self.early), bytearray()
        tls_layer = transport.get_protocol()
        if isinstance(tls_layer, asyncio.BufferedProtocol) or hasattr(
            tls_layer, "get_buffer"
        ):
            while data:
                buffer = memoryview(tls_layer.get_buffer(len(data)))  # type: ignore[attr-defined]
                size = min(len(buffer), len(data))
                buffer[:size] = data[:size]
                tls_layer.buffer_updated(size)  # type: ignore[attr-defined]
                data = data[size:]
        else:
            tls_layer.data_received(data)  # type: ignore[attr-defined]


def _describe(exc: BaseException, elapsed: float) -> str:
    # asyncio reports the timeout as ConnectionAbortedError, uvloop differently.
    if isinstance(exc, TimeoutError) or elapsed >= HANDSHAKE_TIMEOUT:
        return "handshake timed out"
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    return str(exc) or type(exc).__name__


async def start_tls_server(
    handler: Handler,
    context: ssl.SSLContext,
    listener: str,
    *,
    sock: socket.socket | None = None,
    host: str | None = None,
    port: int | None = None,
    backlog: int = 100,
    limit: int = 2**16,
) -> asyncio.Server:
    """Start a server whose connections do the TLS handshake before `handler` runs."""
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()

    def factory() -> asyncio.Protocol:
        return _HandshakeProtocol(handler, context, listener, limit, tasks)

    if sock is not None:
        return await loop.create_server(factory, sock=sock, backlog=backlog)
    return await loop.create_server(
        factory, host, port, reuse_address=True, backlog=backlog
    )
