"""Checks of inbound mail and the verdict they add up to.

Each check (SPF, DKIM, DMARC, ARC, reputation, anti-spam) implements
`MessageCheck`: `check(message, verdict)` looks at the `InboundMessage` and
at the results of the checks that ran before it (`verdict.results`), and
returns a `CheckResult` or None. `CheckChain.run` calls the checks in order
and folds their results into one `Verdict`, which the delivery pipeline
applies before it replies `250`:

- `reject`: the first check that rejects decides the SMTP reply, and the
  later checks do not run; when every recipient account is in
  `allowed_accounts` (its allow list matched), a reject is dropped and the
  message delivered;
- `quarantine`: the message goes to the quarantine with the reason;
- `junk` / `junk_accounts`: the message is filed into the Junk mailbox of
  every recipient account, or of the listed accounts only, but never for
  an account in `allowed_accounts` (its local allow list matched);
- `auth_results`: RFC 8601 result strings, written into one
  Authentication-Results field carrying our authserv-id;
- `headers`: other fields to add (Received-SPF, X-Spam-*), and
  `strip_headers`: names of incoming fields to remove (a sender must not
  be able to forge our spam verdict).

Scores add up in `Verdict.score`; `symbols` names each rule that fired
with its score, for the X-Spam headers and the logs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from garrison.observability.log import event
from garrison.smtp.replies import Reply
from garrison.store import BlobRef

if TYPE_CHECKING:
    from garrison.delivery.pipeline import Envelope

log = logging.getLogger("garrison.filters")


@dataclass(slots=True)
class InboundMessage:
    """One received message as the checks see it.

    `header` is the raw header section: the field lines with their CRLFs, up
    to the empty line, at most the pipeline's header cap. `trace_end` is the
    offset in `header` where the sender's own fields begin, after the
    Return-Path and Received fields our SMTP server added. `read()` returns
    the whole message; checks that need the body call it only for messages
    up to their own size cap.
    """

    envelope: Envelope
    blob: BlobRef
    header: bytes
    trace_end: int
    reader: object = None

    @property
    def queue_id(self) -> str:
        return self.envelope.queue_id

    @property
    def client_ip(self) -> str:
        return self.envelope.client_ip

    @property
    def helo(self) -> str:
        return self.envelope.helo

    @property
    def mail_from(self) -> str:
        return self.envelope.mail_from

    @property
    def account_ids(self) -> list[int]:
        """The ids of the local accounts the message goes to, without repeats."""
        return list(
            dict.fromkeys(
                account.id
                for rcpt in self.envelope.recipients
                for account in rcpt.accounts
            )
        )

    def read(self) -> bytes:
        """Return the whole message; raises OSError when the blob cannot be read."""
        if self.blob.data is not None:
            return self.blob.data
        reader = self.reader
        assert callable(reader), "InboundMessage.reader is not set"
        return reader(self.blob)  # type: ignore[no-any-return]


@dataclass(slots=True)
class CheckResult:
    """The findings of one check about a message."""

    name: str
    # RFC 8601 resinfo strings, e.g. "spf=pass smtp.mailfrom=example.org".
    auth_results: list[str] = field(default_factory=list)
    # Named rules that fired and their spam scores.
    symbols: dict[str, float] = field(default_factory=dict)
    # Fields to add to the message, as (name, value) without CRLF.
    headers: list[tuple[str, str]] = field(default_factory=list)
    # Names of incoming fields to remove, lower case.
    strip_headers: set[str] = field(default_factory=set)
    reject: Reply | None = None
    quarantine: str | None = None
    junk: bool = False
    junk_accounts: set[int] = field(default_factory=set)
    # Accounts whose local allow list matched the client or sender.
    allowed_accounts: set[int] = field(default_factory=set)
    # Anything later checks need to read (the SPF result, the DKIM domains).
    details: dict[str, object] = field(default_factory=dict)

    @property
    def score(self) -> float:
        return sum(self.symbols.values())


@dataclass(slots=True)
class Verdict:
    """The combined results of every check that ran on one message."""

    results: dict[str, CheckResult] = field(default_factory=dict)
    reject: Reply | None = None
    quarantine: str | None = None
    junk: bool = False
    junk_accounts: set[int] = field(default_factory=set)
    allowed_accounts: set[int] = field(default_factory=set)
    auth_results: list[str] = field(default_factory=list)
    headers: list[tuple[str, str]] = field(default_factory=list)
    strip_headers: set[str] = field(default_factory=set)
    symbols: dict[str, float] = field(default_factory=dict)

    @property
    def score(self) -> float:
        return sum(self.symbols.values())

    def add(self, result: CheckResult) -> None:
        """Fold one check's result into the verdict."""
        self.results[result.name] = result
        if self.reject is None and result.reject is not None:
            self.reject = result.reject
        if self.quarantine is None and result.quarantine is not None:
            self.quarantine = result.quarantine
        self.junk = self.junk or result.junk
        self.junk_accounts |= result.junk_accounts
        self.allowed_accounts |= result.allowed_accounts
        self.auth_results.extend(result.auth_results)
        self.headers.extend(result.headers)
        self.strip_headers |= result.strip_headers
        self.symbols.update(result.symbols)

    def junk_for(self, account_ids: Sequence[int]) -> set[int]:
        """Return the accounts whose copy goes into Junk (never an allowed one)."""
        if self.junk:
            return set(account_ids) - self.allowed_accounts
        return (self.junk_accounts & set(account_ids)) - self.allowed_accounts


class MessageCheck(Protocol):
    """One check of inbound mail."""

    name: str

    async def check(
        self, message: InboundMessage, verdict: Verdict
    ) -> CheckResult | None:
        """Return the check's findings, or None when it found nothing to report.

        A check must not raise for bad input or a failed lookup: it reports
        a temporary error in its result (RFC 8601 `temperror`) or rejects
        with a 4xx reply, as its settings specify.
        """
        ...


class CheckChain:
    """Runs the configured checks in order and folds them into a verdict."""

    def __init__(self, checks: Sequence[MessageCheck]) -> None:
        self.checks = list(checks)

    def __bool__(self) -> bool:
        return bool(self.checks)

    async def run(self, message: InboundMessage) -> Verdict:
        verdict = Verdict()
        started = time.monotonic()
        for check in self.checks:
            result = await check.check(message, verdict)
            if result is None:
                continue
            if result.reject is not None and _all_allowed(message, verdict):
                # Every recipient's allow list vouches for the client or
                # sender, as a whitelist bypasses the spam and DMARC
                # actions in rspamd: deliver instead of rejecting.
                event(
                    log, "reject_skipped", queue_id=message.queue_id,
                    check=result.name, reason="allow list",
                )
                result.reject = None
            verdict.add(result)
            if verdict.reject is not None:
                break
        event(
            log,
            "checks",
            queue_id=message.queue_id,
            score=round(verdict.score, 2),
            action=_action(verdict),
            results=" ".join(verdict.auth_results) or None,
            duration_ms=round((time.monotonic() - started) * 1000),
        )
        return verdict


def _all_allowed(message: InboundMessage, verdict: Verdict) -> bool:
    """Return whether every recipient is a local account on an allow list."""
    recipients = message.envelope.recipients
    if not recipients or not all(rcpt.accounts for rcpt in recipients):
        return False
    return set(message.account_ids) <= verdict.allowed_accounts


def _action(verdict: Verdict) -> str:
    if verdict.reject is not None:
        return f"reject {verdict.reject.code}"
    if verdict.quarantine is not None:
        return "quarantine"
    if verdict.junk or verdict.junk_accounts:
        return "junk"
    return "accept"
