"""Sender Rewriting Scheme (SRS0) for mail forwarded to other domains.

A forwarded message keeps SPF valid only if its envelope sender is in the
forwarding domain. `SRS.forward(sender, domain)` rewrites
`user@origin.example` as

    SRS0=HHHH=TT=origin.example=user@domain

where TT is the day number (mod 1024) in base32 and HHHH the first four
base32 characters of an HMAC-SHA256 over TT, the domain and the local
part. Base32 is case-insensitive, so the address survives servers that
change its case (the directory itself stores addresses in lower case).
`SRS.reverse(local_part)` checks the hash and the age and returns the
original address, so bounces sent to the rewritten address reach it.

The secret is 32 random bytes in the `settings` table under `srs_secret`,
created on first use, so every worker and node shares it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import sqlite3
import time

PREFIX = "srs0="
# Rewritten addresses older than this many days no longer reverse, so an
# old address cannot be used to relay through us for ever.
MAX_AGE_DAYS = 21
_DAY = 86400
_TIMESTAMP_MOD = 1024
_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"


def _timestamp(now: float) -> str:
    day = int(now // _DAY) % _TIMESTAMP_MOD
    return _ALPHABET[day >> 5] + _ALPHABET[day & 31]


def _day(stamp: str) -> int:
    return _ALPHABET.index(stamp[0]) << 5 | _ALPHABET.index(stamp[1])


class SRS:
    """SRS0 rewriting and reversal with one secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @classmethod
    def from_database(cls, conn: sqlite3.Connection) -> SRS:
        """Load the secret from the settings table, creating it on first use."""
        row = conn.execute(
            "SELECT value FROM settings WHERE key = 'srs_secret'"
        ).fetchone()
        if row is None:
            conn.execute(
                "INSERT OR IGNORE INTO settings(key, value) VALUES ('srs_secret', ?)",
                (secrets.token_bytes(32),),
            )
            row = conn.execute(
                "SELECT value FROM settings WHERE key = 'srs_secret'"
            ).fetchone()
        return cls(bytes(row[0]))

    def _hash(self, stamp: str, domain: str, local: str) -> str:
        text = f"{stamp}={domain}={local}".lower().encode("utf-8")
        digest = hmac.new(self._secret, text, hashlib.sha256).digest()
        return base64.b32encode(digest).decode("ascii")[:4].lower()

    def forward(self, sender: str, domain: str, now: float | None = None) -> str:
        """Return the SRS0 address in `domain` that stands for `sender`."""
        local, _, origin = sender.rpartition("@")
        stamp = _timestamp(time.time() if now is None else now)
        digest = self._hash(stamp, origin, local)
        # NOTE: the result may exceed the 64-octet local-part limit of
        # RFC 5321 §4.5.3.1.1 for long senders; most servers accept it.
        return f"SRS0={digest}={stamp}={origin}={local}@{domain}"

    def reverse(self, local_part: str, now: float | None = None) -> str | None:
        """Return the original sender for an SRS0 local part, or None if invalid."""
        if not local_part.lower().startswith(PREFIX):
            return None
        fields = local_part[len(PREFIX) :].split("=", 3)
        if len(fields) != 4:
            return None
        digest, stamp, origin, local = fields
        stamp = stamp.lower()
        if len(stamp) != 2 or any(ch not in _ALPHABET for ch in stamp):
            return None
        if not hmac.compare_digest(digest.lower(), self._hash(stamp, origin, local)):
            return None
        today = int((time.time() if now is None else now) // _DAY) % _TIMESTAMP_MOD
        if (today - _day(stamp)) % _TIMESTAMP_MOD > MAX_AGE_DAYS:
            return None
        return f"{local}@{origin}"
