"""SASL PLAIN for POP3 AUTH: strict base64 and the PLAIN message format.

RFC 5034 §4 carries SASL responses in base64; RFC 4616 §2 defines the PLAIN
message as `[authzid] NUL authcid NUL passwd`. Pure functions, no I/O.
"""

from __future__ import annotations

import binascii

from garrison.pop3 import replies
from garrison.pop3.errors import POP3Error

# RFC 4616 §2: authcid and passwd are each 1 to 255 octets of UTF-8.
_MAX_FIELD = 255


def decode_base64(text: str) -> bytes:
    """Decode one SASL response, rejecting anything outside strict base64.

    RFC 5034 §4 makes the server reject a response it cannot decode; as in
    RFC 4954 §4, characters outside the alphabet and padding in the middle
    count as undecodable. Raises POP3Error with AUTH_INVALID_BASE64.
    """
    try:
        return binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (UnicodeEncodeError, binascii.Error):
        raise POP3Error(replies.AUTH_INVALID_BASE64) from None


def parse_plain(message: bytes) -> tuple[str, str]:
    """Split a PLAIN message into (user name, password).

    Raises POP3Error with AUTH_MALFORMED unless the message has exactly
    three NUL-separated UTF-8 fields with a non-empty authcid and passwd,
    and with AUTH_AUTHZID_MISMATCH when the client asks to act as another
    user, which Garrison does not allow.
    """
    fields = message.split(b"\0")
    if len(fields) != 3:
        raise POP3Error(replies.AUTH_MALFORMED)

    try:
        authzid, authcid, password = (field.decode("utf-8") for field in fields)
    except UnicodeDecodeError:
        raise POP3Error(replies.AUTH_MALFORMED) from None

    if not authcid or not password:
        raise POP3Error(replies.AUTH_MALFORMED)
    if len(fields[1]) > _MAX_FIELD or len(fields[2]) > _MAX_FIELD:
        raise POP3Error(replies.AUTH_MALFORMED)
    if authzid and authzid != authcid:
        raise POP3Error(replies.AUTH_AUTHZID_MISMATCH)
    return authcid, password
