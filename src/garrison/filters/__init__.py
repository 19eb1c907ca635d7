"""Content filters that run in the delivery pipeline before the SMTP `250`.

Anti-virus: `scanner_from_settings(settings.antivirus, store.blobs)` returns
a `VirusScanner` (or None when scanning is off) whose
`check(queue_id, blob)` returns the SMTP reply that refuses a message, a
`QuarantineVerdict` to keep it out of the mailboxes, or None to accept it. `ClamdClient` speaks clamd's INSTREAM protocol over a Unix
socket or TCP on loopback.

Filters return replies rather than raising delivery errors, because the
delivery package sits above this one and maps them.
"""

from garrison.filters.antivirus import (
    QuarantineVerdict,
    VirusScanner,
    scanner_from_settings,
)
from garrison.filters.clamd import ClamdClient, ClamdError, ScanResult

__all__ = [
    "ClamdClient",
    "ClamdError",
    "QuarantineVerdict",
    "ScanResult",
    "VirusScanner",
    "scanner_from_settings",
]
