"""SASL message formats shared by the protocol servers: strict base64 and PLAIN.

RFC 4954 §4 (SMTP) and RFC 5034 §4 (POP3) carry SASL responses in base64;
RFC 4616 §2 defines the PLAIN message as `[authzid] NUL authcid NUL passwd`.
Pure functions without I/O; they raise `SASLError`, which each protocol
maps to its own reply.
"""

from __future__ import annotations

import binascii
import enum

# RFC 4616 §2: authcid and passwd are each 1 to 255 octets of UTF-8.
MAX_FIELD = 255


class SASLFailure(enum.Enum):
    """Reason a SASL response was rejected."""

    INVALID_BASE64 = "invalid_base64"
    MALFORMED = "malformed"
    AUTHZID_MISMATCH = "authzid_mismatch"


class SASLError(Exception):
    """A SASL response could not be used; `failure` is the reason."""

    def __init__(self, failure: SASLFailure) -> None:
        super().__init__(failure.value)
        self.failure = failure


def decode_base64(text: str) -> bytes:
    """Decode one SASL response; raise SASLError(INVALID_BASE64) unless strict base64.

    RFC 4954 §4: characters outside the base64 alphabet and padding in the
    middle make the response undecodable, and the server rejects it.
    """
    try:
        return binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (UnicodeEncodeError, binascii.Error):
        raise SASLError(SASLFailure.INVALID_BASE64) from None


def parse_plain(message: bytes) -> tuple[str, str]:
    """Split a PLAIN message into (user name, password).

    Raises SASLError(MALFORMED) unless the message has exactly three
    NUL-separated UTF-8 fields with a non-empty authcid and passwd of at
    most MAX_FIELD octets, and SASLError(AUTHZID_MISMATCH) when the client
    asks to act as another user, which Garrison does not allow.
    """
    fields = message.split(b"\0")
    if len(fields) != 3:
        raise SASLError(SASLFailure.MALFORMED)
    try:
        authzid, authcid, password = (field.decode("utf-8") for field in fields)
    except UnicodeDecodeError:
        raise SASLError(SASLFailure.MALFORMED) from None
    if not authcid or not password:
        raise SASLError(SASLFailure.MALFORMED)
    if len(fields[1]) > MAX_FIELD or len(fields[2]) > MAX_FIELD:
        raise SASLError(SASLFailure.MALFORMED)
    if authzid and authzid != authcid:
        raise SASLError(SASLFailure.AUTHZID_MISMATCH)
    return authcid, password


def decode_text(data: bytes) -> str:
    """Decode a LOGIN user name or password; raise SASLError(MALFORMED)."""
    if not data or len(data) > MAX_FIELD or b"\0" in data:
        raise SASLError(SASLFailure.MALFORMED)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SASLError(SASLFailure.MALFORMED) from None
