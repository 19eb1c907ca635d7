"""DKIM signing (RFC 6376) with RSA-SHA256 and Ed25519-SHA256 (RFC 8463).

Modules:

- `canonical`: relaxed header and body canonicalisation (RFC 6376 §3.4.2
  and §3.4.4), the body as a stream.
- `signer`: builds the DKIM-Signature header field for one message.
- `keys`: per-domain signing keys in the metadata database, key generation
  and the DNS TXT record to publish.

Signing only: verification of incoming mail belongs to the filters and uses
dkimpy. Signatures use relaxed/relaxed canonicalisation, never the l= tag
(a body length limit lets anyone append content under a valid signature),
and oversign From so that a second From field cannot be added later.
"""

from garrison.dkim.keys import DKIMKeyError, DKIMKeyInfo, DKIMKeyStore, SigningKey
from garrison.dkim.signer import SIGNED_HEADERS, sign_message

__all__ = [
    "SIGNED_HEADERS",
    "DKIMKeyError",
    "DKIMKeyInfo",
    "DKIMKeyStore",
    "SigningKey",
    "sign_message",
]
