"""The service objects one Garrison process shares among its listeners."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

from garrison.config import Settings
from garrison.db.engine import migrate
from garrison.delivery import DeliveryPipeline
from garrison.delivery.signing import MessageSigner
from garrison.directory import Directory
from garrison.dkim import DKIMKeyStore
from garrison.net.limits import ConnectionLimiter
from garrison.net.tls import server_context
from garrison.queue import OutboundQueue
from garrison.store import MailStore


@dataclass
class Services:
    settings: Settings
    store: MailStore
    directory: Directory
    delivery: DeliveryPipeline
    tls_context: ssl.SSLContext
    queue: OutboundQueue = field(init=False)
    # Connection limits and failed-login tracking shared by every listener
    # of this process.
    limiter: ConnectionLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.limiter = ConnectionLimiter.from_settings(self.settings)
        self.queue = OutboundQueue(self.settings, self.store, self.directory)
        self.delivery.outbound = self.queue

    @classmethod
    def open(cls, settings: Settings) -> Services:
        """Migrate the database if needed and open every service."""
        migrate(settings.db_path)
        store = MailStore(settings)
        store.blobs.cleanup_spool()
        directory = Directory(settings.db_path)
        return cls(
            settings=settings,
            store=store,
            directory=directory,
            delivery=DeliveryPipeline(
                store, signer=MessageSigner(store, DKIMKeyStore(settings.db_path))
            ),
            tls_context=server_context(settings.tls.cert_file, settings.tls.key_file),
        )

    def close(self) -> None:
        self.delivery.close()
        self.store.close()
        self.directory.close()
        self.queue.close()
