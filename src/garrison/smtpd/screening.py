"""Client and sender screening on the MX: DNS lists and local policy lists.

`Screening.for_server(server)` returns None for a submission listener,
whose clients are never screened. Otherwise each session gets a
`ClientScreen` at connect, which starts the DNS list lookup at once, so
the queries run while the greeting delay passes and the client sends
EHLO and MAIL. The rules (see `garrison.governance.policy` for the lists):

- connect: a server-level blocked client address gets 554 5.7.1 in place
  of the greeting. With `reputation.dnsbl_reject_at = "connect"`, so does
  a client the DNS block lists name, unless a DNS allow list or a
  server-level allow entry names it. After a 554 greeting every command
  but QUIT gets 503 5.5.1 (RFC 5321 §3.1).
- MAIL FROM: a server-level blocked sender gets 550 5.7.1.
- RCPT TO (local recipients): each account of the recipient is decided
  by its most specific matching entry (user, domain, server). Blocked
  accounts are dropped. With `dnsbl_reject_at = "rcpt"` (the default, as
  Postfix's reject_rbl_client with smtpd_delay_reject = yes), accounts
  without an allow entry are dropped too when the DNS block lists name
  the client. A recipient left with no account is rejected: 550 5.7.1
  when a block entry decided, 554 5.7.1 naming the list otherwise.

An authenticated client is never screened at MAIL or RCPT. A failed or
timed-out DNS query never rejects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from garrison.directory import Account
from garrison.filters.reputation import (
    ClientReputation,
    LookupResult,
    find_reputation,
)
from garrison.observability.log import format_event
from garrison.smtp import replies
from garrison.smtp.replies import Reply

if TYPE_CHECKING:
    from garrison.smtpd.server import SMTPServer
    from garrison.smtpd.session import Session

log = logging.getLogger("garrison.smtpd")


class ClientScreen:
    """The screening state of one session: the pending DNS list lookup."""

    def __init__(self, screening: Screening, client_ip: str) -> None:
        self.screening = screening
        self.client_ip = client_ip
        self._lookup: asyncio.Future[LookupResult] | None = None
        if screening.reputation.has_dns_lists:
            self._lookup = asyncio.ensure_future(screening.reputation.lookup(client_ip))

    async def dns_result(self) -> LookupResult | None:
        """Wait for the DNS list lookup; None when there are no lists or it failed."""
        if self._lookup is None:
            return None
        try:
            return await self._lookup
        except Exception:
            # lookup() itself turns DNS errors into failed zones, so this
            # is a bug; the client is treated as not listed.
            log.error(
                format_event("error", {"stage": "dnsbl", "ip": self.client_ip}),
                exc_info=True,
            )
            self._lookup = None
            return None

    def close(self) -> None:
        """Cancel this session's wait for a lookup still running."""
        if self._lookup is not None and not self._lookup.done():
            self._lookup.cancel()

    async def connect_refusal(self) -> Reply | None:
        """Return the reply that replaces the greeting, or None to greet."""
        policy = self.screening.reputation.policy
        decision = policy.decide_client(self.client_ip)
        if decision is not None and decision.action == "block":
            return replies.CLIENT_BLOCKED_POLICY.format(ip=self.client_ip)
        if self.screening.reject_at != "connect":
            return None
        if decision is not None and decision.action == "allow":
            return None
        result = await self.dns_result()
        if result is not None and result.listed:
            return replies.CLIENT_BLOCKED_DNSBL.format(
                ip=self.client_ip, zone=result.blocking_zone
            )
        return None


class Screening:
    """The screening rules of one MX listener."""

    def __init__(self, reputation: ClientReputation, reject_at: str) -> None:
        self.reputation = reputation
        self.reject_at = reject_at

    @classmethod
    def for_server(cls, server: SMTPServer) -> Screening | None:
        """Return the screening of an MX listener, None for submission.

        The delivery pipeline's reputation check, when it has one, shares
        its lookup cache with the SMTP server, so the check at the end of
        data reads the result of the lookup made at connect.
        """
        if server.listener.protocol != "smtp":
            return None
        reputation = find_reputation(server.delivery.checks.checks)
        if reputation is None:
            reputation = ClientReputation.from_settings(server.settings)
        return cls(reputation, server.settings.reputation.dnsbl_reject_at)

    def start(self, client_ip: str) -> ClientScreen:
        """Start screening a new connection."""
        return ClientScreen(self, client_ip)


def check_sender(session: Session, sender: str) -> Reply | None:
    """Return the reply that rejects MAIL FROM `sender`, or None."""
    screen = session.screen
    if screen is None or session.connection.account is not None:
        return None
    policy = screen.screening.reputation.policy
    decision = policy.decide_sender(screen.client_ip, sender)
    if decision is not None and decision.action == "block":
        return replies.SENDER_BLOCKED.format(sender=sender)
    return None


async def screen_recipient(
    session: Session, address: str, accounts: Sequence[Account]
) -> tuple[list[Account], Reply | None]:
    """Return the accounts of a recipient that accept the mail, or the rejection.

    The reply is None whenever at least one account accepts.
    """
    screen = session.screen
    if screen is None or session.connection.account is not None or not accounts:
        return list(accounts), None
    policy = screen.screening.reputation.policy
    sender = session.transaction.sender
    accepted: list[Account] = []
    undecided: list[Account] = []
    for account in accounts:
        decision = policy.decide_account(account.address, screen.client_ip, sender)
        if decision is None:
            undecided.append(account)
        elif decision.action == "allow":
            accepted.append(account)

    refusal = replies.RECIPIENT_BLOCKS_SENDER.format(recipient=address)
    if undecided:
        result = None
        if screen.screening.reject_at == "rcpt":
            result = await screen.dns_result()
        if result is not None and result.listed:
            refusal = replies.CLIENT_BLOCKED_DNSBL.format(
                ip=screen.client_ip, zone=result.blocking_zone
            )
        else:
            accepted.extend(undecided)
    if not accepted:
        return [], refusal
    # Keep the directory's order, so delivery does not depend on the lists.
    return [account for account in accounts if account in accepted], None
