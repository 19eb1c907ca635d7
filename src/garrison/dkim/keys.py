"""Per-domain DKIM signing keys in the metadata database (table `dkim_keys`).

Each local domain has at most one key: RSA-2048 (rsa-sha256) or Ed25519
(ed25519-sha256, RFC 8463), and a selector that names its DNS record
`<selector>._domainkey.<domain>`. Private keys are stored unencrypted as
PKCS#8 PEM, so the database file needs the same protection as the TLS key.

`DKIMKeyStore.signing_key(domain)` is called for every submitted message,
so it caches loaded keys for `KEY_CACHE_SECONDS`. A key generated or
removed by the CLI while the server runs takes effect within that time.
"""

from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from garrison.db.engine import connect
from garrison.directory.addresses import AddressError, normalize_domain

Algorithm = Literal["rsa", "ed25519"]
ALGORITHMS: tuple[Algorithm, ...] = ("rsa", "ed25519")
RSA_BITS = 2048
KEY_CACHE_SECONDS = 2.0

# RFC 6376 §3.1: a selector is one or more DNS labels.
_SELECTOR = re.compile(
    r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
)
# DNS TXT character-strings hold at most 255 octets (RFC 1035 §3.3).
_TXT_STRING = 255


class DKIMKeyError(Exception):
    """A key operation was rejected; the message names the value and the fix."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A loaded private key with the domain and selector it signs for."""

    domain: str
    selector: str
    algorithm: Algorithm
    private_key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True, slots=True)
class DKIMKeyInfo:
    """A stored key as listed: no private material, plus its DNS record."""

    domain: str
    selector: str
    algorithm: Algorithm
    created_at: int
    record_name: str
    record_value: str


def default_selector(now: float | None = None) -> str:
    """Return a selector for a new key: "g" and the year and month, g202612."""
    return time.strftime("g%Y%m", time.gmtime(now))


def dns_record(key: SigningKey) -> tuple[str, str]:
    """Return the TXT record name and value that publish `key`'s public key.

    RFC 6376 §3.6.1: v=DKIM1, k= the key type, p= the base64 public key: the
    DER SubjectPublicKeyInfo for RSA, the raw 32 octets for Ed25519 (RFC
    8463 §4).
    """
    public = key.private_key.public_key()
    if isinstance(public, ed25519.Ed25519PublicKey):
        data = public.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        key_type = "ed25519"
    else:
        data = public.public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        key_type = "rsa"
    value = f"v=DKIM1; k={key_type}; p={base64.b64encode(data).decode('ascii')}"
    return f"{key.selector}._domainkey.{key.domain}", value


def zone_file_line(name: str, value: str) -> str:
    """Format a TXT record for a zone file, split into 255-octet strings."""
    parts = [value[i : i + _TXT_STRING] for i in range(0, len(value), _TXT_STRING)]
    strings = " ".join(f'"{part}"' for part in parts)
    return f"{name}. IN TXT ( {strings} )"


def _load(domain: str, selector: str, algorithm: str, pem: bytes) -> SigningKey:
    private_key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(private_key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        raise DKIMKeyError(f"the stored DKIM key of {domain} has an unknown type")
    return SigningKey(domain, selector, algorithm, private_key)  # type: ignore[arg-type]


class DKIMKeyStore:
    """Reads and changes the `dkim_keys` table through its own connection."""

    def __init__(self, db_path: Path) -> None:
        self._conn = connect(db_path)
        self._cache: dict[str, tuple[SigningKey | None, float]] = {}

    def close(self) -> None:
        self._conn.close()

    @staticmethod
    def _domain(domain: str) -> str:
        try:
            return normalize_domain(domain)
        except AddressError as exc:
            raise DKIMKeyError(str(exc)) from None

    def generate(
        self, domain: str, algorithm: str = "rsa", selector: str | None = None
    ) -> DKIMKeyInfo:
        """Create and store a key for a local domain; return it with its record.

        Raises DKIMKeyError when the domain is not local, already has a
        key, or the algorithm or selector is invalid.
        """
        name = self._domain(domain)
        if algorithm not in ALGORITHMS:
            raise DKIMKeyError(
                f"unknown algorithm {algorithm!r}; use one of: {', '.join(ALGORITHMS)}"
            )
        chosen = (selector or default_selector()).lower()
        if len(chosen) > 63 or not _SELECTOR.fullmatch(chosen):
            raise DKIMKeyError(
                f"invalid selector {chosen!r}: use letters, digits and hyphens, "
                "such as g202612"
            )
        if not self._conn.execute(
            "SELECT 1 FROM domains WHERE name = ?", (name,)
        ).fetchone():
            raise DKIMKeyError(
                f"domain {name} is not a local domain; add it with "
                f"'garrison domain add {name}'"
            )

        private_key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
        if algorithm == "ed25519":
            private_key = ed25519.Ed25519PrivateKey.generate()
        else:
            private_key = rsa.generate_private_key(
                public_exponent=65537, key_size=RSA_BITS
            )
        pem = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        created_at = int(time.time())
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            if self._conn.execute(
                "SELECT 1 FROM dkim_keys WHERE domain = ?", (name,)
            ).fetchone():
                raise DKIMKeyError(
                    f"domain {name} already has a DKIM key; remove it first with "
                    f"'garrison dkim remove {name}'"
                )
            self._conn.execute(
                "INSERT INTO dkim_keys(domain, selector, algorithm, private_key,"
                " created_at) VALUES (?, ?, ?, ?, ?)",
                (name, chosen, algorithm, pem, created_at),
            )
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._cache.pop(name, None)
        key = SigningKey(name, chosen, algorithm, private_key)  # type: ignore[arg-type]
        return self._info(key, created_at)

    @staticmethod
    def _info(key: SigningKey, created_at: int) -> DKIMKeyInfo:
        record_name, record_value = dns_record(key)
        return DKIMKeyInfo(
            key.domain,
            key.selector,
            key.algorithm,
            created_at,
            record_name,
            record_value,
        )

    def list(self) -> list[DKIMKeyInfo]:
        """Return every stored key with its DNS record, ordered by domain."""
        rows = self._conn.execute(
            "SELECT domain, selector, algorithm, private_key, created_at"
            " FROM dkim_keys ORDER BY domain"
        ).fetchall()
        return [self._info(_load(*row[:4]), row[4]) for row in rows]

    def remove(self, domain: str) -> None:
        """Delete a domain's key; raise DKIMKeyError when it has none."""
        name = self._domain(domain)
        with self._conn:
            cursor = self._conn.execute(
                "DELETE FROM dkim_keys WHERE domain = ?", (name,)
            )
        self._cache.pop(name, None)
        if cursor.rowcount == 0:
            raise DKIMKeyError(
                f"domain {name} has no DKIM key; see 'garrison dkim list'"
            )

    def signing_key(self, domain: str) -> SigningKey | None:
        """Return the key that signs for `domain`, or None when it has none."""
        now = time.monotonic()
        cached = self._cache.get(domain)
        if cached is not None and cached[1] > now:
            return cached[0]
        row = self._conn.execute(
            "SELECT domain, selector, algorithm, private_key FROM dkim_keys"
            " WHERE domain = ?",
            (domain,),
        ).fetchone()
        key = _load(*row) if row else None
        self._cache[domain] = (key, now + KEY_CACHE_SECONDS)
        return key
