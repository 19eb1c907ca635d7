"""Routing: where mail for a domain goes (RFC 5321 §5.1, RFC 7505).

`Router.route(domain)` returns the hosts to try, best first, each with its
addresses and port, or raises `RoutingError` with the reply that the
recipients get:

- MX records sorted by preference, hosts of equal preference shuffled
  (RFC 5321 §5.1); each MX host's A and AAAA records give its addresses.
- No MX record: the domain itself is the implicit MX (its A and AAAA).
- A null MX (one MX record whose exchange is ".", RFC 7505): permanent
  failure 556 5.1.10 at once.
- NXDOMAIN: permanent failure 5.1.2. Time-outs and SERVFAIL: temporary.

`queue.routing_override` maps a destination domain or an MX host name to
HOST:PORT for tests. `queue.allowed_networks`, when set, drops every
address outside those networks, so a test setup can never connect to a
host outside the loopback range.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver

from garrison.config import Settings


class RoutingError(Exception):
    """No route to a domain; carries the reply for its recipients."""

    def __init__(self, code: int, enhanced: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.enhanced = enhanced
        self.text = text

    @property
    def temporary(self) -> bool:
        return 400 <= self.code < 500


@dataclass(frozen=True, slots=True)
class Hop:
    """One host to try: its name (for logs and DSNs), addresses and port."""

    host: str
    addresses: tuple[str, ...]
    port: int


def parse_host_port(text: str, default_port: int) -> tuple[str, int]:
    """Split `HOST`, `HOST:PORT` or `[IPv6]:PORT`; raise ValueError if invalid."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    if not host:
        raise ValueError(f"invalid host in {text!r}: expected HOST or HOST:PORT")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"invalid port in {text!r}: expected 1 to 65535")
    return host, int(port) if port else default_port


def build_resolver(settings: Settings) -> dns.asyncresolver.Resolver:
    """Return a resolver for the configured name servers, or the system's."""
    resolver = dns.asyncresolver.Resolver(configure=not settings.dns.nameservers)
    configure_resolver(resolver, settings)
    return resolver


def configure_resolver(resolver: dns.resolver.Resolver, settings: Settings) -> None:
    """Point a resolver at `dns.nameservers` (when set) with `dns.timeout`."""
    if settings.dns.nameservers:
        servers: list[str | dns.nameserver.Nameserver] = []
        for entry in settings.dns.nameservers:
            host, port = parse_host_port(entry, 53)
            servers.append(dns.nameserver.Do53Nameserver(host, port))
        resolver.nameservers = servers
    resolver.lifetime = settings.dns.timeout


class Router:
    """Looks up where mail for a domain goes."""

    def __init__(
        self, settings: Settings, resolver: dns.asyncresolver.Resolver | None = None
    ) -> None:
        self.settings = settings
        self.resolver = resolver or build_resolver(settings)
        self.port = settings.queue.smtp_port
        self.networks = [
            ipaddress.ip_network(net, strict=False)
            for net in settings.queue.allowed_networks
        ]
        self.overrides = {
            name.lower().rstrip("."): target
            for name, target in settings.queue.routing_override.items()
        }

    async def route(self, domain: str) -> list[Hop]:
        """Return the hops for `domain`, best first; raise RoutingError."""
        domain = domain.lower().rstrip(".")
        override = self._override(domain)
        if override is not None:
            return [override]
        if domain.startswith("[") and domain.endswith("]"):
            return self._filter([Hop(domain, (_literal_address(domain),), self.port)])

        hosts = await self._mx_hosts(domain)
        hops: list[Hop] = []
        for host in hosts:
            override = self._override(host)
            if override is not None:
                hops.append(override)
                continue
            addresses = await self._addresses(host)
            if addresses:
                hops.append(Hop(host, tuple(addresses), self.port))
        if not hops:
            raise RoutingError(
                451, "4.4.3", f"no address found for the mail servers of {domain}"
            )
        return self._filter(hops)

    def _override(self, name: str) -> Hop | None:
        target = self.overrides.get(name)
        if target is None:
            return None
        host, port = parse_host_port(target, self.port)
        return self._filter([Hop(name, (host,), port)])[0]

    def _filter(self, hops: list[Hop]) -> list[Hop]:
        if not self.networks:
            return hops
        allowed = []
        for hop in hops:
            addresses = tuple(a for a in hop.addresses if self._allowed(a))
            if addresses:
                allowed.append(Hop(hop.host, addresses, hop.port))
        if not allowed:
            raise RoutingError(
                451,
                "4.4.4",
                "the destination's addresses are outside queue.allowed_networks",
            )
        return allowed

    def _allowed(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.networks)

    async def _mx_hosts(self, domain: str) -> list[str]:
        try:
            answer = await self.resolver.resolve(domain, "MX")
        except dns.resolver.NXDOMAIN as exc:
            raise RoutingError(
                550, "5.1.2", f"domain {domain} does not exist (NXDOMAIN)"
            ) from exc
        except dns.resolver.NoAnswer:
            # RFC 5321 §5.1: without MX records, the domain is its own MX.
            return [domain]
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
            raise RoutingError(
                451, "4.4.3", f"MX lookup for {domain} failed: {exc}"
            ) from exc

        records = [(r.preference, r.exchange.to_text().rstrip(".")) for r in answer]
        if any(host == "" for _, host in records):
            # RFC 7505 §3: a null MX is the only MX record of a domain that
            # accepts no mail; §4.1 says to fail at once with 5.1.10.
            raise RoutingError(
                556, "5.1.10", f"domain {domain} accepts no mail (null MX)"
            )
        # RFC 5321 §5.1: lowest preference first, equal preferences in
        # random order to spread the load.
        random.shuffle(records)
        records.sort(key=lambda record: record[0])
        return [host.lower() for _, host in records]

    async def _addresses(self, host: str) -> list[str]:
        addresses: list[str] = []
        for rdtype in ("A", "AAAA"):
            try:
                answer = await self.resolver.resolve(host, rdtype)
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                continue
            except (dns.exception.Timeout, dns.resolver.NoNameservers):
                continue
            addresses.extend(record.address for record in answer)
        return addresses


def _literal_address(literal: str) -> str:
    content = literal[1:-1]
    if content[:5].lower() == "ipv6:":
        return content[5:]
    return content
