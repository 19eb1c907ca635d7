"""DNS lookups for the sender authentication checks, through our resolver.

pyspf and dkimpy are synchronous and run in executor threads, so they get a
synchronous dnspython resolver built from `settings.dns` (the same name
servers and timeout as `garrison.queue.routing.build_resolver`). Neither
library's own resolver is ever used: `TxtLookup` is dkimpy's `dnsfunc`,
and `RecordLookup` answers pyspf's lookups in pyspf's record format.

Errors map to what the RFCs ask: NXDOMAIN and an empty answer are "no
records"; a timeout, SERVFAIL or an unreachable server is a temporary
error (`DNSTemporaryError`), which the checks report as `temperror`.
"""

from __future__ import annotations

import time

import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from garrison.config.schema import Settings
from garrison.queue.routing import configure_resolver

# dnspython raises these for names that cannot exist in DNS (an empty or
# over-long label, a name over 255 octets, bad IDNA): such a name has no
# records.
_INVALID_NAME = (
    dns.name.EmptyLabel,
    dns.name.LabelTooLong,
    dns.name.NameTooLong,
    dns.name.IDNAException,
)


class DNSTemporaryError(Exception):
    """A lookup timed out or failed on every server; retrying may succeed."""


def build_sync_resolver(settings: Settings) -> dns.resolver.Resolver:
    """Return a synchronous resolver for the configured name servers.

    An empty `dns.nameservers` means the system resolver, as for the queue.
    """
    resolver = dns.resolver.Resolver(configure=not settings.dns.nameservers)
    configure_resolver(resolver, settings)
    return resolver


def resolve(
    resolver: dns.resolver.Resolver,
    name: str,
    rdtype: str,
    timeout: float | None = None,
) -> list[dns.rdata.Rdata]:
    """Return the records of `rdtype` at `name`, or [] when there are none.

    The name is always absolute: no search list is applied. Raises
    DNSTemporaryError on a timeout or when no server answered usefully.
    """
    lifetime = resolver.lifetime if timeout is None else min(timeout, resolver.lifetime)
    try:
        qname = dns.name.from_text(name.rstrip(".") + ".")
        answer = resolver.resolve(
            qname, rdtype, search=False, raise_on_no_answer=False, lifetime=lifetime
        )
    except _INVALID_NAME:
        return []
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.exception.Timeout as exc:
        raise DNSTemporaryError(f"DNS lookup of {name} {rdtype} timed out") from exc
    except dns.resolver.NoNameservers as exc:
        raise DNSTemporaryError(f"DNS lookup of {name} {rdtype} failed: {exc}") from exc
    if answer.rrset is None:
        return []
    return list(answer.rrset)


class TxtLookup:
    """dkimpy's `dnsfunc`: returns the joined TXT record, or None.

    dkimpy turns every lookup failure into a failed signature, so the
    lookup records a temporary error in `temporary_error` for the caller to
    report `temperror` instead, and `missing` when no record was found.
    `start(time_limit)` bounds all lookups for one message: past the
    deadline a lookup fails at once as a temporary error.
    """

    def __init__(self, resolver: dns.resolver.Resolver) -> None:
        self.resolver = resolver
        self.temporary_error = False
        self.missing = False
        self.deadline: float | None = None

    def start(self, time_limit: float | None) -> None:
        """Begin one message: clear the flags and set the deadline, if any."""
        self.reset()
        self.deadline = None if time_limit is None else time.monotonic() + time_limit

    def reset(self) -> None:
        """Clear the error flags before the next signature."""
        self.temporary_error = False
        self.missing = False

    def __call__(self, name: bytes | str, timeout: float = 5) -> bytes | None:
        text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        if self.deadline is not None:
            timeout = min(timeout, self.deadline - time.monotonic())
            if timeout <= 0:
                self.temporary_error = True
                return None
        try:
            records = resolve(self.resolver, text, "TXT", timeout)
        except DNSTemporaryError:
            self.temporary_error = True
            return None
        if not records:
            self.missing = True
            return None
        # RFC 6376 §3.6.2.2: the strings of one TXT record are concatenated.
        # Several records at one name are ambiguous; dkimpy's own lookup
        # also takes the first.
        return b"".join(records[0].strings)  # type: ignore[attr-defined]


class RecordLookup:
    """pyspf's `DNSLookup`: returns [((name, type), data), ...] as pyspf expects.

    Data formats follow pyspf's own dnspython lookup: A and AAAA as address
    text, MX as (preference, exchange text), PTR as target text, TXT as a
    tuple of byte strings. Raises `spf.TempError` on a temporary error.
    """

    def __init__(self, resolver: dns.resolver.Resolver) -> None:
        self.resolver = resolver

    def __call__(
        self, name: str, qtype: str, timeout: float | None
    ) -> list[tuple[tuple[str, str], object]]:
        import spf

        if qtype not in ("A", "AAAA", "MX", "PTR", "TXT"):
            # RFC 7208 §3.1: type SPF (99) records are not used any more.
            return []
        try:
            records = resolve(self.resolver, name, qtype, timeout)
        except DNSTemporaryError as exc:
            raise spf.TempError(str(exc)) from exc
        key = (name, qtype)
        results: list[tuple[tuple[str, str], object]] = []
        for rdata in records:
            if qtype in ("A", "AAAA"):
                results.append((key, rdata.address))  # type: ignore[attr-defined]
            elif qtype == "MX":
                exchange = rdata.exchange.to_text(omit_final_dot=True)  # type: ignore[attr-defined]
                results.append((key, (rdata.preference, exchange)))  # type: ignore[attr-defined]
            elif qtype == "PTR":
                results.append((key, rdata.target.to_text(omit_final_dot=True)))  # type: ignore[attr-defined]
            else:
                results.append((key, tuple(rdata.strings)))  # type: ignore[attr-defined]
        return results
