"""The sender authentication checks of inbound mail, in the order they run.

DMARC discovery starts first, so its DNS lookups overlap with SPF and DKIM;
then SPF (RFC 7208), DKIM (RFC 6376), ARC (RFC 8617) and DMARC (RFC 7489),
which reads the three results before it.
"""

from __future__ import annotations

from garrison.config.schema import Settings
from garrison.filters.arc import ARCCheck
from garrison.filters.dkim_verify import DKIMCheck
from garrison.filters.dmarc import DMARCCheck, DMARCDiscovery
from garrison.filters.spf import SPFCheck
from garrison.filters.verdict import MessageCheck


def authentication_checks(settings: Settings) -> list[MessageCheck]:
    """Return the sender authentication checks, or [] when they are off."""
    if not settings.authentication.enabled:
        return []
    return [
        DMARCDiscovery(settings),
        SPFCheck(settings),
        DKIMCheck(settings),
        ARCCheck(settings),
        DMARCCheck(settings),
    ]
