"""GETQUOTA, GETQUOTAROOT and SETQUOTA (RFC 9208).

Each account has one quota root, named "" (the empty string), with the
resource STORAGE in units of 1024 octets (RFC 9208 §5.1). Its limit is the
account's `quota_bytes`, and an account without a limit has no quota root.
The MESSAGE resource is not offered, because accounts have no message
count limit. Users cannot change limits, so SETQUOTA is rejected and
QUOTASET is not advertised.
"""

from __future__ import annotations

from garrison.imap import errors
from garrison.imap.command import Command, QuotaRootArg
from garrison.imap.encoder import Response, string
from garrison.imap.encoder import mailbox as encode_mailbox
from garrison.imap.errors import no
from garrison.imap.session import Session
from garrison.store import QuotaUsage

QUOTA_ROOT = ""
# RFC 9208 §5.1: STORAGE is counted in units of 1024 octets.
STORAGE_UNIT = 1024


def _usage(session: Session) -> QuotaUsage:
    assert session.account is not None
    return session.store.quota_usage(session.account.id)


def _quota_response(usage: QuotaUsage) -> bytes:
    assert usage.limit_bytes is not None
    # Round usage up, so a mailbox is never shown as below a limit it has reached.
    used = (usage.used_bytes + STORAGE_UNIT - 1) // STORAGE_UNIT
    limit = usage.limit_bytes // STORAGE_UNIT
    return b"QUOTA " + string(QUOTA_ROOT) + b" (STORAGE %d %d)" % (used, limit)


async def getquota(session: Session, command: Command, response: Response) -> None:
    args: QuotaRootArg = command.args
    usage = _usage(session)
    if args.root != QUOTA_ROOT or usage.limit_bytes is None:
        raise no(f"Quota root {args.root!r} does not exist", errors.NONEXISTENT)
    response.untagged(_quota_response(usage))


async def getquotaroot(
    session: Session, command: Command, response: Response
) -> None:
    args: QuotaRootArg = command.args
    assert session.account is not None
    mailbox = session.store.get_mailbox(session.account.id, args.root)
    if mailbox is None:
        raise no(f"Mailbox {args.root} does not exist", errors.NONEXISTENT)
    usage = _usage(session)
    name = encode_mailbox(mailbox.name, session.utf8_mailboxes)
    if usage.limit_bytes is None:
        # RFC 9208 §4.1.2: a mailbox without a quota root lists no root.
        response.untagged(b"QUOTAROOT " + name)
        return
    response.untagged(b"QUOTAROOT " + name + b" " + string(QUOTA_ROOT))
    response.untagged(_quota_response(usage))


async def setquota(session: Session, command: Command, response: Response) -> None:
    # RFC 9208 §4.1.3: a user may not change their own limits.
    raise no("Quota limits are set by the administrator", errors.NOPERM)
