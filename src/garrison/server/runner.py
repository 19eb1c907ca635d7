"""Run the listeners of one Garrison process until SIGTERM or SIGINT.

Shutdown order: stop accepting connections, let every protocol server end
its sessions (SMTP answers 421 to idle sessions and lets transactions that
are already sending data finish within `server.shutdown_grace`), then flush
the store's writer and close the database.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from typing import Any, Protocol

from garrison.config import ListenerSettings, Settings
from garrison.net.implicit_tls import start_tls_server
from garrison.observability.log import event
from garrison.server.peers import PeerNotifier
from garrison.server.services import Services
from garrison.store.gc import BlobCollector
from garrison.store.indexer import SearchIndexer

log = logging.getLogger("garrison.server")
# The tables besides `messages` whose rows keep a message file in use.
BLOB_REFERRERS = (("queue_messages", "blob_id"), ("quarantine", "blob_id"))
_BACKLOG = 1024
# StreamReader buffer limit; the protocol readers bound lines themselves.
_READ_LIMIT = 256 * 1024


class ProtocolServer(Protocol):
    async def handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None: ...

    async def shutdown(self) -> None: ...


def build_protocol(listener: ListenerSettings, services: Services) -> ProtocolServer:
    """Return the protocol server object for one listener."""
    common: dict[str, Any] = {
        "settings": services.settings,
        "listener": listener,
        "tls_context": services.tls_context,
        "limiter": services.limiter,
    }
    # RFC 6409: submission is SMTP with the listener's AUTH and relay policy.
    if listener.protocol in ("smtp", "submission"):
        from garrison.smtpd.server import SMTPServer

        return SMTPServer(
            **common, directory=services.directory, store=services.store,
            delivery=services.delivery,
        )
    if listener.protocol == "imap":
        from garrison.imap.server import IMAPServer

        return IMAPServer(**common, directory=services.directory, store=services.store)
    if listener.protocol == "pop3":
        from garrison.pop3.server import POP3Server

        return POP3Server(**common, directory=services.directory, store=services.store)
    raise ValueError(
        f"listener {listener.name!r}: protocol {listener.protocol!r} is not available"
        " in this version; remove the listener"
    )


class Runner:
    """Owns the services, the listening sockets and the protocol servers."""

    def __init__(
        self,
        settings: Settings,
        sockets: dict[str, socket.socket] | None = None,
        run_queue: bool = True,
    ) -> None:
        self.settings = settings
        self.sockets = sockets or {}
        # Only one process per database runs the queue scheduler and the
        # search indexer.
        self.run_queue = run_queue
        self.indexer: SearchIndexer | None = None
        self.collector: BlobCollector | None = None
        self.services: Services | None = None
        self.servers: list[tuple[ListenerSettings, asyncio.Server, ProtocolServer]] = []
        self.stopping = asyncio.Event()

    async def start(self) -> None:
        """Open the services and bind every listener."""
        self.services = Services.open(self.settings)
        try:
            for listener in self.settings.listeners:
                protocol = build_protocol(listener, self.services)
                bound = self.sockets.get(listener.name)
                if listener.tls == "implicit":
                    server = await start_tls_server(
                        protocol.handle,
                        self.services.tls_context,
                        listener.name,
                        sock=bound,
                        host=None if bound is not None else listener.address,
                        port=None if bound is not None else listener.port,
                        backlog=_BACKLOG,
                        limit=_READ_LIMIT,
                    )
                elif bound is not None:
                    server = await asyncio.start_server(
                        protocol.handle, sock=bound, backlog=_BACKLOG, limit=_READ_LIMIT
                    )
                else:
                    server = await asyncio.start_server(
                        protocol.handle,
                        listener.address,
                        listener.port,
                        reuse_address=True,
                        backlog=_BACKLOG,
                        limit=_READ_LIMIT,
                    )
                self.servers.append((listener, server, protocol))
                port = server.sockets[0].getsockname()[1]
                event(
                    log, "listening", listener=listener.name,
                    protocol=listener.protocol, address=listener.address, port=port,
                    tls=listener.tls,
                )
            if self.run_queue:
                self.services.queue.start_scheduler()
                self.indexer = SearchIndexer(self.services.store)
                self.indexer.start()
                store_settings = self.settings.store
                if store_settings.blob_gc_interval:
                    self.collector = BlobCollector(
                        self.services.store,
                        referrers=BLOB_REFERRERS,
                        grace=store_settings.blob_gc_grace,
                        interval=store_settings.blob_gc_interval,
                    )
                    self.collector.start()
        except BaseException:
            await self.stop()
            raise

    def port(self, name: str) -> int:
        """Return the bound port of the named listener."""
        for listener, server, _ in self.servers:
            if listener.name == name:
                return int(server.sockets[0].getsockname()[1])
        raise KeyError(name)

    async def stop(self) -> None:
        """Stop accepting, end sessions cleanly, and close the services."""
        for _, server, _ in self.servers:
            server.close()
        if self.indexer is not None:
            await self.indexer.stop()
            self.indexer = None
        if self.collector is not None:
            await self.collector.stop()
            self.collector = None
        if self.services is not None:
            await self.services.queue.stop(self.settings.server.shutdown_grace)
        await asyncio.gather(
            *(protocol.shutdown() for _, _, protocol in self.servers),
            return_exceptions=True,
        )
        for _, server, _ in self.servers:
            try:
                await asyncio.wait_for(server.wait_closed(), timeout=2)
            except TimeoutError:
                pass
        self.servers.clear()
        if self.services is not None:
            self.services.close()
            self.services = None
        event(log, "stopped")


async def serve(
    settings: Settings,
    sockets: dict[str, socket.socket] | None = None,
    worker: tuple[int, int] = (0, 1),
) -> None:
    """Run one worker until SIGTERM or SIGINT, then shut down cleanly.

    `worker` is (index, count): with more than one worker, committed changes
    are announced to the other workers' IMAP sessions.
    """
    index, count = worker
    runner = Runner(settings, sockets, run_queue=index == 0)
    await runner.start()
    assert runner.services is not None
    peers = None
    if count > 1:
        peers = PeerNotifier(
            settings.server.data_dir / "run", index, count, runner.services.store
        )
        peers.start()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, runner.stopping.set)
    event(log, "started", hostname=settings.server.hostname, worker=index)
    await runner.stopping.wait()
    event(log, "stopping", worker=index)
    if peers is not None:
        peers.stop()
    await runner.stop()
