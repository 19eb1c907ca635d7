"""Mail address and domain syntax for the directory.

Addresses are stored in lower case with the domain in its IDNA ASCII form,
so lookups are case-insensitive on both parts. Local parts are dot-atoms
(RFC 5322 §3.4.1); UTF-8 is allowed in them (RFC 6531 §3.3).
"""

from __future__ import annotations

import re

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]"
_DOT_ATOM = re.compile(rf"{_ATEXT}+(\.{_ATEXT}+)*")
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


class AddressError(ValueError):
    """An address or domain is malformed; the message names it."""


def normalize_domain(domain: str) -> str:
    """Return the domain in lower-case IDNA ASCII form, or raise AddressError."""
    name = domain.strip().rstrip(".").lower()
    try:
        ascii_name = name.encode("idna").decode("ascii") if name else ""
    except UnicodeError:
        raise AddressError(f"invalid domain {domain!r}") from None
    labels = ascii_name.split(".")
    if len(ascii_name) > 253:
        raise AddressError(f"invalid domain {domain!r}: longer than 253 characters")
    if len(labels) < 2:
        raise AddressError(
            f"invalid domain {domain!r}: expected a name such as example.org"
        )
    for label in labels:
        if not _LABEL.fullmatch(label):
            raise AddressError(
                f"invalid domain {domain!r}: label {label!r} must be 1 to 63 letters,"
                " digits or hyphens, not starting or ending with a hyphen"
            )
    if labels[-1].isdigit():
        # RFC 3696 §2: a top-level domain is never all-numeric, so this is an
        # IP address, which is not a mail domain.
        raise AddressError(f"invalid domain {domain!r}: an IP address is not a domain")
    return ascii_name


def split_address(address: str) -> tuple[str, str]:
    """Return (local part, domain) normalised, or raise AddressError."""
    text = address.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    local, sep, domain = text.rpartition("@")
    if not sep or not local:
        raise AddressError(
            f"invalid address {address!r}: expected local-part@domain"
        )
    if len(local.encode("utf-8")) > 64 or not _DOT_ATOM.fullmatch(local):
        raise AddressError(f"invalid local part in address {address!r}")
    return local.lower(), normalize_domain(domain)


def normalize_address(address: str) -> str:
    """Return the address in its stored form."""
    local, domain = split_address(address)
    return f"{local}@{domain}"
