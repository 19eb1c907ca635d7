"""Client reputation: DNS block and allow lists, and the local policy lists.

`ClientReputation` (one per worker) owns the DNS lists of the
`[reputation]` settings and the `PolicyCache` of the local allow and
block lists (`garrison.governance.policy`). `lookup(client_ip)` queries
every DNSBL and DNSWL zone concurrently within `dns_timeout` seconds. A
query name is the reversed IPv4 octets or IPv6 nibbles, then the zone,
and an A record means listed (RFC 5782 §2). Each worker keeps the result
per address for `cache_ttl` seconds. A query that fails or times out counts as "not listed", so a DNS
failure never rejects mail. The SMTP server calls it at connect and
rejects at connect or RCPT as `dnsbl_reject_at` says.

`ReputationCheck` is the inbound check named "reputation". It runs first
whenever DNS lists are set or other checks run (`garrison.filters.chain`),
and its `CheckResult` carries, for the checks after it:

- symbols `DNSBL_<zone>` (the list's weight) and `DNSWL_<zone>` (minus
  the list's weight), which add to the spam score;
- `allowed_accounts`: the recipient accounts whose allow entry (user,
  domain or server level, see `garrison.governance.policy`) matches the
  client or sender. The verdict never files their copy into Junk;
- `details`: "allow" (the same set of account ids), "dnsbl_score" (the
  summed weight of the block lists), "dnsbl_listed" (the score reached
  `dnsbl_threshold` and no allow list names the client) and
  "dnswl_listed". A spam check must not file an allowed account's copy
  into Junk, and must not reject or quarantine a message that has an
  allowed recipient (`garrison.filters.spam` follows this).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

import dns.asyncresolver
import dns.exception
import dns.resolver

from garrison.config.schema import ReputationSettings, Settings
from garrison.filters.verdict import CheckResult, InboundMessage, Verdict
from garrison.governance.policy import PolicyCache, client_address
from garrison.observability.log import event
from garrison.queue.routing import build_resolver

log = logging.getLogger("garrison.filters")

_SITE = re.compile(
    r"(?P<zone>[A-Za-z0-9_.-]+?)(?:=(?P<filter>[0-9.\[\];]+))?(?:\*(?P<weight>[0-9]+))?"
)


class SiteError(ValueError):
    """A DNS list entry in the settings is invalid."""


@dataclass(frozen=True, slots=True)
class DNSListSite:
    """One DNS list: its zone, the A records that count, and its weight."""

    zone: str
    # One set of allowed values per octet of the returned address; None
    # means any A record counts.
    codes: tuple[frozenset[int], ...] | None
    weight: int

    def matches(self, address: str) -> bool:
        """Return whether a returned A record passes the site's filter."""
        if self.codes is None:
            return True
        octets = address.split(".")
        if len(octets) != 4 or not all(octet.isdigit() for octet in octets):
            return False
        return all(
            int(octet) in allowed
            for octet, allowed in zip(octets, self.codes, strict=True)
        )


def _parse_octet(text: str, site: str) -> frozenset[int]:
    if text.isdigit():
        values = {int(text)}
    elif text.startswith("[") and text.endswith("]"):
        values = set()
        for part in text[1:-1].split(";"):
            low, dots, high = part.partition("..")
            if not low.isdigit() or (dots and not high.isdigit()):
                raise SiteError(f"invalid octet {text!r} in DNS list {site!r}")
            values.update(range(int(low), int(high or low) + 1))
    else:
        raise SiteError(f"invalid octet {text!r} in DNS list {site!r}")
    if not values or max(values) > 255:
        raise SiteError(f"octet {text!r} in DNS list {site!r} is out of 0-255")
    return frozenset(values)


def _split_octets(text: str) -> list[str]:
    """Split a filter at the dots that are not inside brackets ([2..11])."""
    octets = []
    current = ""
    depth = 0
    for char in text:
        if char == "." and depth == 0:
            octets.append(current)
            current = ""
            continue
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        current += char
    octets.append(current)
    return octets


def parse_site(text: str) -> DNSListSite:
    """Parse ZONE[=FILTER][*WEIGHT] (Postfix postscreen_dnsbl_sites syntax).

    FILTER has four octets, each a number, `[a..b]` or `[a;b;c]` (the forms
    combine: `[1;3..5]`). Raises SiteError when the text is invalid.
    """
    matched = _SITE.fullmatch(text.strip())
    if matched is None or not matched["zone"].strip("."):
        raise SiteError(
            f"invalid DNS list {text!r}; expected ZONE[=FILTER][*WEIGHT], e.g. "
            "zen.example=127.0.0.[2..11]*3"
        )
    codes = None
    if matched["filter"]:
        octets = _split_octets(matched["filter"])
        if len(octets) != 4:
            raise SiteError(f"invalid filter in DNS list {text!r}; expected 4 octets")
        codes = tuple(_parse_octet(octet, text) for octet in octets)
    weight = int(matched["weight"]) if matched["weight"] else 1
    return DNSListSite(matched["zone"].strip(".").lower(), codes, weight)


def query_name(client_ip: str, zone: str) -> str | None:
    """Return the DNS list query name for an address, or None if not an IP.

    IPv4 reverses the four octets (RFC 5782 §2.1); IPv6 reverses the 32
    nibbles (RFC 5782 §2.4).
    """
    ip = client_address(client_ip)
    if ip is None:
        return None
    pointer = ip.reverse_pointer
    suffix = ".in-addr.arpa" if isinstance(ip, ipaddress.IPv4Address) else ".ip6.arpa"
    return f"{pointer.removesuffix(suffix)}.{zone}"


@dataclass(frozen=True, slots=True)
class ListHit:
    """One list that names the client, with the A records that passed its filter."""

    site: DNSListSite
    addresses: tuple[str, ...]


@dataclass(slots=True)
class LookupResult:
    """The DNS list results for one client address."""

    blocks: list[ListHit] = field(default_factory=list)
    allows: list[ListHit] = field(default_factory=list)
    # Zones whose query failed or timed out.
    failed: list[str] = field(default_factory=list)
    threshold: int = 1

    @property
    def score(self) -> int:
        """The summed weight of the block lists that name the client."""
        return sum(hit.site.weight for hit in self.blocks)

    @property
    def allowlisted(self) -> bool:
        return bool(self.allows)

    @property
    def listed(self) -> bool:
        """Whether the block lists reach the threshold and no allow list names it."""
        return self.score >= self.threshold and not self.allowlisted

    @property
    def blocking_zone(self) -> str:
        """The zone named in the rejection: the heaviest block list."""
        return max(self.blocks, key=lambda hit: hit.site.weight).site.zone

    def symbols(self) -> dict[str, float]:
        """Spam score symbols: DNSBL_<zone> and DNSWL_<zone>."""
        found = {
            f"DNSBL_{hit.site.zone}": float(hit.site.weight) for hit in self.blocks
        }
        found.update(
            {f"DNSWL_{hit.site.zone}": -float(hit.site.weight) for hit in self.allows}
        )
        return found


class ClientReputation:
    """DNS list lookups with a per-address cache, and the local policy lists."""

    def __init__(
        self,
        settings: ReputationSettings,
        policy: PolicyCache,
        resolver: dns.asyncresolver.Resolver | None,
    ) -> None:
        self.settings = settings
        self.policy = policy
        self.resolver = resolver
        self.block_sites = [parse_site(text) for text in settings.dnsbl_sites]
        self.allow_sites = [parse_site(text) for text in settings.dnswl_sites]
        self._cache: OrderedDict[str, tuple[float, LookupResult]] = OrderedDict()
        self._pending: dict[str, asyncio.Task[LookupResult]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> ClientReputation:
        """Build the lists for `settings`; raises SiteError for a bad list entry."""
        policy = PolicyCache(
            settings.db_path, settings.reputation.policy_refresh_interval
        )
        # Without lists no resolver is built, so a host without
        # /etc/resolv.conf still starts when dns.nameservers is empty.
        lists = settings.reputation.dnsbl_sites or settings.reputation.dnswl_sites
        resolver = build_resolver(settings) if lists else None
        return cls(settings.reputation, policy, resolver)

    @property
    def has_dns_lists(self) -> bool:
        return bool(self.block_sites or self.allow_sites)

    async def lookup(self, client_ip: str) -> LookupResult:
        """Return the DNS list result for an address, from the cache if fresh.

        Concurrent lookups of one address share one set of queries. Never
        raises for a DNS failure: the failed zones are in `failed`.
        """
        if not self.has_dns_lists:
            return LookupResult(threshold=self.settings.dnsbl_threshold)
        now = time.monotonic()
        cached = self._cache.get(client_ip)
        if cached is not None and cached[0] > now:
            return cached[1]
        task = self._pending.get(client_ip)
        if task is None:
            task = asyncio.ensure_future(self._query_all(client_ip))
            self._pending[client_ip] = task
            task.add_done_callback(lambda _: self._pending.pop(client_ip, None))
        # shield: a session that goes away must not cancel another's lookup.
        return await asyncio.shield(task)

    async def _query_all(self, client_ip: str) -> LookupResult:
        started = time.monotonic()
        result = LookupResult(threshold=self.settings.dnsbl_threshold)
        sites = [(site, False) for site in self.block_sites]
        sites += [(site, True) for site in self.allow_sites]
        tasks = [
            asyncio.ensure_future(self._query(client_ip, site)) for site, _ in sites
        ]
        done, not_done = await asyncio.wait(tasks, timeout=self.settings.dns_timeout)
        for task in not_done:
            task.cancel()
        for task, (site, allows) in zip(tasks, sites, strict=True):
            if task not in done or task.exception() is not None:
                result.failed.append(site.zone)
                continue
            addresses = task.result()
            if addresses:
                hits = result.allows if allows else result.blocks
                hits.append(ListHit(site, addresses))
        if not result.failed and self.settings.cache_ttl > 0:
            self._remember(client_ip, result)
        if result.blocks or result.allows or result.failed:
            event(
                log,
                "dnsbl",
                ip=client_ip,
                score=result.score,
                blocks=",".join(hit.site.zone for hit in result.blocks) or None,
                allows=",".join(hit.site.zone for hit in result.allows) or None,
                failed=",".join(result.failed) or None,
                duration_ms=round((time.monotonic() - started) * 1000),
            )
        return result

    async def _query(self, client_ip: str, site: DNSListSite) -> tuple[str, ...]:
        name = query_name(client_ip, site.zone)
        if name is None or self.resolver is None:
            return ()
        try:
            answer = await self.resolver.resolve(
                name,
                "A",
                lifetime=self.settings.dns_timeout,
                raise_on_no_answer=False,
            )
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return ()
        except dns.exception.DNSException as exc:
            event(
                log,
                "dnsbl_query_failed",
                logging.WARNING,
                ip=client_ip,
                zone=site.zone,
                error=type(exc).__name__,
            )
            raise
        return tuple(rdata.address for rdata in answer if site.matches(rdata.address))

    def _remember(self, client_ip: str, result: LookupResult) -> None:
        self._cache[client_ip] = (time.monotonic() + self.settings.cache_ttl, result)
        self._cache.move_to_end(client_ip)
        while len(self._cache) > self.settings.cache_size:
            self._cache.popitem(last=False)

    def allowed_accounts(
        self, addresses: Iterable[tuple[int, str]], client_ip: str, sender: str
    ) -> set[int]:
        """Return the ids of the (id, address) accounts whose decision is allow."""
        allowed = set()
        for account_id, address in addresses:
            decision = self.policy.decide_account(address, client_ip, sender)
            if decision is not None and decision.action == "allow":
                allowed.add(account_id)
        return allowed


class ReputationCheck:
    """The inbound check that exposes the list results to the later checks."""

    name = "reputation"

    def __init__(self, reputation: ClientReputation) -> None:
        self.reputation = reputation

    async def check(
        self, message: InboundMessage, verdict: Verdict
    ) -> CheckResult | None:
        """Return the DNS list symbols and the allow decisions (never rejects)."""
        envelope = message.envelope
        result = await self.reputation.lookup(envelope.client_ip)
        accounts = {
            account.id: account.address
            for recipient in envelope.recipients
            for account in recipient.accounts
        }
        allowed = self.reputation.allowed_accounts(
            accounts.items(), envelope.client_ip, envelope.mail_from
        )
        return CheckResult(
            self.name,
            symbols=result.symbols(),
            allowed_accounts=allowed,
            details={
                "allow": allowed,
                "dnsbl_score": result.score,
                "dnsbl_listed": result.listed,
                "dnswl_listed": result.allowlisted,
            },
        )


def find_reputation(checks: Iterable[object]) -> ClientReputation | None:
    """Return the ClientReputation of the ReputationCheck among `checks`, if any."""
    for check in checks:
        if isinstance(check, ReputationCheck):
            return check.reputation
    return None


def reputation_check(settings: Settings) -> ReputationCheck:
    """Build the reputation check for `settings`; raises SiteError for a bad list."""
    return ReputationCheck(ClientReputation.from_settings(settings))
