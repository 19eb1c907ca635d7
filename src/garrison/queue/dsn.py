"""Delivery status notifications: bounces, delay warnings, success reports.

`build_dsn(...)` returns the bytes of a multipart/report message with
report-type=delivery-status (RFC 6522): a text/plain part for people, a
message/delivery-status part (RFC 3464 §2) with one per-recipient block
each, and the returned content, the whole message (message/rfc822) when
RET=FULL or headers only (text/rfc822-headers) otherwise. The DSN goes
out with the null reverse-path (RFC 3461 §6.2, RFC 5321 §4.5.5), so it
is never answered by another DSN.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

# Content returned with RET=FULL is cut to headers above this size, so a
# bounce of a 50 MB message does not cost another 50 MB.
MAX_RETURNED_CONTENT = 1024 * 1024

ACTION_FAILED = "failed"
ACTION_DELAYED = "delayed"
ACTION_DELIVERED = "delivered"
ACTION_RELAYED = "relayed"


@dataclass(frozen=True, slots=True)
class RecipientReport:
    """The per-recipient fields of a DSN (RFC 3464 §2.3)."""

    address: str
    orcpt: str | None
    action: str
    status: str
    remote_host: str | None
    diagnostic: str | None
    will_retry_until: datetime | None = None


def header_section(content: bytes) -> bytes:
    """Return the header section of a message, up to and including the blank line."""
    end = content.find(b"\r\n\r\n")
    if end < 0:
        return content if content.endswith(b"\r\n") else content + b"\r\n"
    return content[: end + 4]


def _subject(action: str) -> str:
    return {
        ACTION_FAILED: "Undelivered Mail Returned to Sender",
        ACTION_DELAYED: "Delayed Mail (still being retried)",
        ACTION_DELIVERED: "Successful Mail Delivery Report",
        ACTION_RELAYED: "Mail Relayed Report",
    }[action]


def _explanation(action: str, reporting_mta: str) -> str:
    if action == ACTION_FAILED:
        return (
            f"This is the mail system at {reporting_mta}.\r\n\r\n"
            "Your message could not be delivered to one or more recipients.\r\n"
            "The reasons are listed below and in the attached report.\r\n"
        )
    if action == ACTION_DELAYED:
        return (
            f"This is the mail system at {reporting_mta}.\r\n\r\n"
            "Your message has not been delivered yet to one or more recipients.\r\n"
            "Delivery will be retried; you need not send it again.\r\n"
        )
    return (
        f"This is the mail system at {reporting_mta}.\r\n\r\n"
        "Your message was delivered or passed on, as you requested to be told.\r\n"
    )


def _orcpt_field(orcpt: str) -> str:
    # RFC 3461 §4.2: ORCPT is "addr-type ; xtext"; stored decoded already.
    addr_type, sep, address = orcpt.partition(";")
    if not sep:
        return f"rfc822;{orcpt}"
    return f"{addr_type.strip()};{address.strip()}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def build_dsn(
    *,
    reporting_mta: str,
    sender: str,
    queue_id: str,
    envid: str | None,
    arrival: datetime,
    recipients: Sequence[RecipientReport],
    original: bytes,
    ret_full: bool,
    now: datetime | None = None,
) -> bytes:
    """Return a complete DSN message addressed to `sender`.

    `recipients` must share one action. `original` is the queued message;
    its whole content is returned when `ret_full` is true and it is no
    larger than MAX_RETURNED_CONTENT, otherwise its header section.
    """
    now = now or datetime.now(UTC)
    action = recipients[0].action
    boundary = f"{queue_id}.{secrets.token_hex(8)}/{reporting_mta}"
    crlf = "\r\n"

    headers = [
        f"From: Mail Delivery System <MAILER-DAEMON@{reporting_mta}>",
        f"To: <{sender}>",
        f"Subject: {_subject(action)}",
        f"Date: {format_datetime(now)}",
        f"Message-ID: <{queue_id}.{secrets.token_hex(6)}@{reporting_mta}>",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        # RFC 6522 §3: multipart/report with the report-type parameter.
        "Content-Type: multipart/report; report-type=delivery-status;",
        f'\tboundary="{boundary}"',
    ]

    # RFC 3464 §2.2: per-message fields come first, one block.
    per_message = [f"Reporting-MTA: dns; {reporting_mta}"]
    if envid:
        per_message.append(f"Original-Envelope-Id: {_one_line(envid)}")
    per_message.append(f"X-Garrison-Queue-ID: {queue_id}")
    per_message.append(f"Arrival-Date: {format_datetime(arrival)}")

    blocks = [crlf.join(per_message)]
    for report in recipients:
        # RFC 3464 §2.3: one block of per-recipient fields for each recipient.
        fields = []
        if report.orcpt:
            fields.append(f"Original-Recipient: {_orcpt_field(report.orcpt)}")
        fields.append(f"Final-Recipient: rfc822; {report.address}")
        fields.append(f"Action: {report.action}")
        fields.append(f"Status: {report.status}")
        if report.remote_host:
            fields.append(f"Remote-MTA: dns; {report.remote_host}")
        if report.diagnostic:
            fields.append(f"Diagnostic-Code: smtp; {_one_line(report.diagnostic)}")
        fields.append(f"Last-Attempt-Date: {format_datetime(now)}")
        if report.will_retry_until is not None:
            fields.append(
                f"Will-Retry-Until: {format_datetime(report.will_retry_until)}"
            )
        blocks.append(crlf.join(fields))

    summary = [_explanation(action, reporting_mta)]
    for report in recipients:
        reason = report.diagnostic or report.status
        summary.append(f"<{report.address}>: {_one_line(reason)}\r\n")

    if ret_full and len(original) <= MAX_RETURNED_CONTENT:
        returned_type, returned = "message/rfc822", original
    else:
        returned_type, returned = "text/rfc822-headers", header_section(original)
    if not returned.endswith(b"\r\n"):
        returned += b"\r\n"

    parts = [
        crlf.join(headers) + crlf + crlf,
        "This is a MIME-encapsulated message.\r\n\r\n",
        f"--{boundary}\r\n",
        "Content-Description: Notification\r\n",
        "Content-Type: text/plain; charset=utf-8\r\n\r\n",
        "".join(summary),
        f"\r\n--{boundary}\r\n",
        "Content-Description: Delivery report\r\n",
        "Content-Type: message/delivery-status\r\n\r\n",
        (crlf + crlf).join(blocks) + crlf,
        f"\r\n--{boundary}\r\n",
        "Content-Description: Returned content\r\n",
        f"Content-Type: {returned_type}\r\n\r\n",
    ]
    head = "".join(parts).encode("utf-8")
    return head + returned + f"\r\n--{boundary}--\r\n".encode("ascii")
