"""DMARC policy records, organizational domains and author domains (RFC 7489).

- `parse_record(text)` parses a `v=DMARC1` TXT record into a `DMARCRecord`.
- `organizational_domain(domain)` applies RFC 7489 §3.2 with the Public
  Suffix List that the `publicsuffixlist` package ships.
- `aligned(domain, author_domain, mode)` is identifier alignment (§3.1).
- `author_domains(header)` extracts the RFC5322.From domains (§6.6.1).
"""

from __future__ import annotations

import email.utils
import functools
import re
from dataclasses import dataclass

import dkim
from publicsuffixlist import PublicSuffixList

from garrison.filters.dkim_verify import parse_header

POLICIES = ("none", "quarantine", "reject")
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")


class InvalidRecord(ValueError):
    """A DMARC record has no usable p= tag and no rua= tag (RFC 7489 §6.6.3)."""


@dataclass(frozen=True, slots=True)
class DMARCRecord:
    """The tags of one DMARC record that a receiver acts on (RFC 7489 §6.3)."""

    policy: str
    subdomain_policy: str | None = None
    adkim: str = "r"
    aspf: str = "r"
    pct: int = 100


def is_dmarc_record(text: str) -> bool:
    """Whether a TXT record starts with the DMARC version tag (RFC 7489 §6.6.3)."""
    version, _, _ = text.partition(";")
    name, _, value = version.partition("=")
    return name.strip() == "v" and value.strip() == "DMARC1"


def parse_record(text: str) -> DMARCRecord:
    """Parse a DMARC record; raise InvalidRecord when no policy can be used.

    RFC 7489 §6.3: tag names are case-sensitive as registered, unknown tags
    are ignored, and invalid optional tags fall back to their defaults.
    """
    tags: dict[str, str] = {}
    for part in text.split(";"):
        name, equals, value = part.partition("=")
        if equals and name.strip() and name.strip() not in tags:
            tags[name.strip()] = value.strip()
    policy = tags.get("p", "").lower()
    subdomain_policy = tags.get("sp", "").lower() or None
    if policy not in POLICIES or (
        subdomain_policy is not None and subdomain_policy not in POLICIES
    ):
        # RFC 7489 §6.6.3 step 6: an invalid p= or sp= acts as p=none when
        # the record names a report address, else DMARC does not apply.
        if "rua" not in tags:
            raise InvalidRecord(f"invalid DMARC record: p={tags.get('p', '')!r}")
        policy, subdomain_policy = "none", None
    adkim = tags.get("adkim", "r").lower()
    aspf = tags.get("aspf", "r").lower()
    pct_text = tags.get("pct", "100")
    pct = int(pct_text) if pct_text.isdigit() and int(pct_text) <= 100 else 100
    return DMARCRecord(
        policy,
        subdomain_policy,
        adkim if adkim in ("r", "s") else "r",
        aspf if aspf in ("r", "s") else "r",
        pct,
    )


@functools.cache
def _public_suffix_list() -> PublicSuffixList:
    return PublicSuffixList()


def organizational_domain(domain: str) -> str:
    """Return the organizational domain: the public suffix plus one label.

    A domain that is itself a public suffix is its own organizational domain.
    """
    return _public_suffix_list().privatesuffix(domain) or domain


def aligned(domain: str, author_domain: str, mode: str) -> bool:
    """Whether an authenticated domain aligns with the author domain.

    RFC 7489 §3.1: strict mode needs the same name; relaxed mode, the same
    organizational domain.
    """
    domain = domain.lower().rstrip(".")
    if not domain:
        return False
    if mode == "s":
        return domain == author_domain
    return organizational_domain(domain) == organizational_domain(author_domain)


def normalize_domain(domain: str) -> str | None:
    """Return the domain in lower-case A-labels, or None when it is not valid.

    RFC 7489 §6.6.1: a U-label author domain is converted to an A-label.
    """
    domain = domain.strip().rstrip(".").lower()
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or len(ascii_domain) > 253:
        return None
    if not all(_LABEL.match(label) for label in labels):
        return None
    return ascii_domain


@dataclass(frozen=True, slots=True)
class AuthorDomains:
    """What the From fields of a message name.

    `fields` is the number of From fields; `domains` the distinct valid
    author domains in order; `invalid` counts addresses without a valid
    domain.
    """

    fields: int
    domains: tuple[str, ...]
    invalid: int

    @property
    def single(self) -> str | None:
        """The author domain when there is exactly one From field and domain."""
        if self.fields == 1 and len(self.domains) == 1 and not self.invalid:
            return self.domains[0]
        return None


def author_domains(header: bytes) -> AuthorDomains:
    """Extract the author domains from a header section (RFC 7489 §6.6.1)."""
    try:
        fields = parse_header(header + b"\r\n")
    except dkim.DKIMException:
        return AuthorDomains(0, (), 0)
    values = [
        value.decode("utf-8", "replace")
        for name, value in fields
        if name.strip().lower() == b"from"
    ]
    domains: list[str] = []
    invalid = 0
    unfolded = [re.sub(r"\r?\n", "", value) for value in values]
    for _name, address in email.utils.getaddresses(unfolded):
        _local, at, domain = address.rpartition("@")
        normalized = normalize_domain(domain) if at else None
        if normalized is None:
            invalid += 1
        elif normalized not in domains:
            domains.append(normalized)
    return AuthorDomains(len(values), tuple(domains), invalid)
