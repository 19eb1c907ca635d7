"""Anti-virus filter: scan each message with clamd before it is accepted.

`VirusScanner.check(queue_id, blob)` returns None when the message may be
delivered, a `QuarantineVerdict` when it is to be quarantined, or the SMTP
reply that rejects it:

- infected: `554 5.7.0` naming clamd's signature with `on_infected =
  "reject"`, or a QuarantineVerdict whose reason is the signature with
  `on_infected = "quarantine"`;
- clamd unreachable, timed out or failed: with `on_error = "defer"`,
  `451 4.7.0`, so the sender retries and nothing passes unscanned. With
  "accept" the message is delivered unscanned.

Every scan logs one `virus_scan` line with the queue id, verdict, signature,
duration and action, and never any message content.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from garrison.config.schema import AntivirusSettings
from garrison.filters.clamd import ClamdClient, ClamdError
from garrison.observability.log import event
from garrison.smtp import replies
from garrison.smtp.replies import Reply
from garrison.store import BlobRef, BlobStore

log = logging.getLogger("garrison.filters.antivirus")


@dataclass(frozen=True, slots=True)
class QuarantineVerdict:
    """A decision to accept the message into the quarantine, with the reason."""

    reason: str


class VirusScanner:
    """Scans committed message blobs with clamd and maps verdicts to replies."""

    def __init__(self, settings: AntivirusSettings, blobs: BlobStore) -> None:
        self.settings = settings
        self.blobs = blobs
        self.client = ClamdClient(settings.clamd, settings.timeout)

    async def check(
        self, queue_id: str, blob: BlobRef
    ) -> Reply | QuarantineVerdict | None:
        """Scan the blob; return the rejecting reply, a quarantine verdict or None.

        A clamd failure (ClamdError) or a blob read error (OSError) does not
        raise but takes the `on_error` action.
        """
        started = time.monotonic()
        try:
            with self.blobs.open_ref(blob) as source:
                result = await self.client.scan(source)
        except (ClamdError, OSError) as exc:
            action = self.settings.on_error
            event(
                log,
                "virus_scan",
                logging.ERROR,
                queue_id=queue_id,
                verdict="error",
                duration_ms=_elapsed_ms(started),
                action=action,
                error=exc,
            )
            if action == "accept":
                return None
            return replies.VIRUS_SCAN_FAILED

        if not result.infected:
            event(
                log,
                "virus_scan",
                queue_id=queue_id,
                verdict="clean",
                duration_ms=_elapsed_ms(started),
                action="accept",
            )
            return None

        event(
            log,
            "virus_scan",
            logging.WARNING,
            queue_id=queue_id,
            verdict="infected",
            signature=result.signature,
            duration_ms=_elapsed_ms(started),
            action=self.settings.on_infected,
        )
        if self.settings.on_infected == "quarantine":
            return QuarantineVerdict(result.signature)
        return replies.VIRUS_FOUND.format(signature=result.signature)


def _elapsed_ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def scanner_from_settings(
    settings: AntivirusSettings, blobs: BlobStore
) -> VirusScanner | None:
    """Return a scanner when anti-virus scanning is enabled, else None."""
    if not settings.enabled:
        return None
    return VirusScanner(settings, blobs)
