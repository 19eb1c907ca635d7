"""DKIM signatures verify with dkimpy (RSA-SHA256 and Ed25519-SHA256).

The directory is not named `dkim` because that would shadow dkimpy's
package of the same name. dkimpy is an independent implementation of RFC 6376 and RFC 8463. Tests
have no public DNS, so its `dnsfunc` returns the TXT record that
`dns_record` produces for the key, as `garrison dkim generate` prints it.
"""

from __future__ import annotations

import dkim
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from garrison.dkim.canonical import RelaxedBodyHash, relaxed_header
from garrison.dkim.keys import SigningKey, dns_record
from garrison.dkim.signer import sign_message

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ED25519_KEY = ed25519.Ed25519PrivateKey.generate()
KEYS = {
    "rsa": SigningKey("example.test", "sel", "rsa", RSA_KEY),
    "ed25519": SigningKey("example.test", "s2026", "ed25519", ED25519_KEY),
}

PLAIN = (
    b"From: Alice <alice@example.test>\r\n"
    b"To: bob@example.org\r\n"
    b"Subject: plain\r\n"
    b"Date: Fri, 04 Dec 2026 10:00:00 +0000\r\n"
    b"Message-ID: <plain@example.test>\r\n"
    b"\r\n"
    b"Hello.\r\n"
)
FOLDED = (
    b"From: Alice\r\n <alice@example.test>\r\n"
    b"To: bob@example.org,\r\n\tcarol@example.org,\r\n  dave@example.org\r\n"
    b"Subject:   many    spaces\t and tabs   \r\n"
    b"Cc: erin@example.org\r\n"
    b"X-Unsigned: not in the list\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain;\r\n\tcharset=utf-8\r\n"
    b"\r\n"
    b"Body with   inner   spaces and trailing space   \r\n"
    b"\ttab-indented line\t\r\n"
)
EIGHT_BIT = (
    b"From: =?utf-8?q?J=C3=B6rg?= <joerg@example.test>\r\n"
    b"To: bob@example.org\r\n"
    b"Subject: 8bit\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln\r\n"
    b"\xe4\xb8\xad\xe6\x96\x87\r\n"
)
TRAILING_BLANKS = (
    b"From: alice@example.test\r\nSubject: blanks\r\n\r\nlast line\r\n\r\n\r\n \r\n\r\n"
)
EMPTY_BODY = b"From: alice@example.test\r\nSubject: empty\r\n\r\n"
NO_BODY_SEPARATOR = b"From: alice@example.test\r\nSubject: header only\r\n"
MESSAGES = {
    "plain": PLAIN,
    "folded headers": FOLDED,
    "8-bit body": EIGHT_BIT,
    "trailing blank lines": TRAILING_BLANKS,
    "empty body": EMPTY_BODY,
    "no body separator": NO_BODY_SEPARATOR,
}


def signed(key: SigningKey, message: bytes, chunk: int = 7) -> bytes:
    head, separator, body = message.partition(b"\r\n\r\n")
    header = head + b"\r\n" if separator else message
    chunks = [body[i : i + chunk] for i in range(0, len(body), chunk)]
    return sign_message(key, header, chunks) + message


def verify(message: bytes, key: SigningKey) -> bool:
    name, value = dns_record(key)

    def dnsfunc(query: bytes, timeout: int = 5) -> bytes:
        assert query.decode().rstrip(".") == name
        return value.encode()

    return bool(dkim.verify(message, dnsfunc=dnsfunc))


@pytest.mark.parametrize("algorithm", sorted(KEYS))
@pytest.mark.parametrize("name", list(MESSAGES))
def test_signature_verifies(algorithm: str, name: str) -> None:
    key = KEYS[algorithm]
    assert verify(signed(key, MESSAGES[name]), key)


@pytest.mark.parametrize("algorithm", sorted(KEYS))
def test_tampering_breaks_signature(algorithm: str) -> None:
    key = KEYS[algorithm]
    message = signed(key, PLAIN)
    assert not verify(message.replace(b"Hello.", b"Hellp."), key)
    assert not verify(message.replace(b"Subject: plain", b"Subject: plaiN"), key)


def test_added_from_breaks_signature() -> None:
    key = KEYS["rsa"]
    message = signed(key, PLAIN)
    assert verify(message, key)
    # A verifier picks the bottom-most From for the first h= entry, so a
    # From added at the top would pass unnoticed without the second entry.
    forged = b"From: mallory@example.org\r\n" + message
    assert not verify(forged, key)


def test_added_trailing_blank_lines_still_verify() -> None:
    key = KEYS["ed25519"]
    assert verify(signed(key, PLAIN) + b"\r\n\r\n", key)


def test_signature_tags() -> None:
    field = sign_message(KEYS["rsa"], PLAIN.partition(b"\r\n\r\n")[0] + b"\r\n", [])
    unfolded = field.replace(b"\r\n ", b" ").decode()
    assert unfolded.startswith("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;")
    assert " d=example.test; s=sel;" in unfolded
    assert " h=from:from:subject:date:message-id:to;" in unfolded
    # l= would let anyone append content under a valid signature.
    assert " l=" not in unfolded
    assert all(len(line) <= 78 for line in field.split(b"\r\n"))


def test_relaxed_header_examples() -> None:
    # RFC 6376 §3.4.6, example headers under relaxed canonicalisation.
    assert relaxed_header(b"A: X") == b"a:X\r\n"
    assert relaxed_header(b"B : Y\t\r\n\tZ  ") == b"b:Y Z\r\n"


def test_relaxed_body_example() -> None:
    # RFC 6376 §3.4.6: " C \r\nD \t E\r\n\r\n\r\n" becomes " C\r\nD E\r\n".
    import hashlib

    whole = RelaxedBodyHash()
    whole.update(b" C \r\nD \t E\r\n\r\n\r\n")
    split = RelaxedBodyHash()
    for byte in b" C \r\nD \t E\r\n\r\n\r\n":
        split.update(bytes([byte]))
    expected = hashlib.sha256(b" C\r\nD E\r\n").digest()
    assert whole.digest() == expected
    assert split.digest() == expected
