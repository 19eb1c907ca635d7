"""Mail store: mailboxes, messages, flags, UIDs, MODSEQs and blobs.

Entry point: `MailStore(settings)`. See `service` for the durability rules.
"""

from garrison.store.blobs import BlobRef, BlobStore, BlobWriter
from garrison.store.errors import (
    MailboxExists,
    MailboxNotFound,
    QuotaExceeded,
    StoreError,
)
from garrison.store.quota import QuotaUsage
from garrison.store.service import (
    DELIMITER,
    INBOX,
    Mailbox,
    MailboxStatus,
    MailStore,
    MessageRecord,
    ModSeq,
    UID,
)

__all__ = [
    "DELIMITER",
    "INBOX",
    "UID",
    "BlobRef",
    "BlobStore",
    "BlobWriter",
    "MailStore",
    "Mailbox",
    "MailboxExists",
    "MailboxNotFound",
    "MailboxStatus",
    "MessageRecord",
    "ModSeq",
    "QuotaExceeded",
    "QuotaUsage",
    "StoreError",
]
