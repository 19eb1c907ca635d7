"""The sender authentication checks of inbound mail, in the order they run.

DMARC discovery starts first, so its DNS lookups overlap with SPF and DKIM;
then SPF (RFC 7208), DKIM (RFC 6376), ARC (RFC 8617) and DMARC (RFC 7489),
which reads the three results before it.

pyspf and dkimpy block, so SPF, DKIM and ARC run in a thread pool of their
own. A sender whose name servers are slow then ties up those threads for
up to the time limits, and not the event loop's default executor, which
the delivery pipeline uses for blob reads and writes.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from garrison.config.schema import Settings
from garrison.filters.arc import ARCCheck
from garrison.filters.dkim_verify import DKIMCheck
from garrison.filters.dmarc import DMARCCheck, DMARCDiscovery
from garrison.filters.spf import SPFCheck
from garrison.filters.verdict import MessageCheck

# Threads for the blocking checks of one worker process. The work is mostly
# waiting for DNS, so this is a concurrency bound, not a CPU count.
# NOTE: an estimate; past it, messages wait for a thread before SPF starts.
THREADS = 16


def authentication_checks(settings: Settings) -> list[MessageCheck]:
    """Return the sender authentication checks, or [] when they are off."""
    if not settings.authentication.enabled:
        return []
    executor = ThreadPoolExecutor(THREADS, thread_name_prefix="garrison-auth")
    return [
        DMARCDiscovery(settings),
        SPFCheck(settings, executor=executor),
        DKIMCheck(settings, executor=executor),
        ARCCheck(settings, executor=executor),
        DMARCCheck(settings),
    ]
