"""DKIM verification of inbound mail (RFC 6376) with dkimpy.

`DKIMCheck` verifies every DKIM-Signature field, up to
`authentication.dkim_max_signatures`, and returns one resinfo per
signature, `dkim=<result> header.d=<domain> header.s=<selector>
header.b=<first 8 characters of b=>` (RFC 8601 §2.7.1), or `dkim=none`
when the message has no signature. `details["signatures"]` lists the
`SignatureResult`s for DMARC.

Results:

- pass: the signature verified;
- fail: the body hash or the signature did not match;
- neutral: the signature could not be processed (a missing or invalid
  tag, an expired signature), and also every signature of a message over
  `authentication.dkim_max_message_size`, which is not verified because
  dkimpy keeps the whole message, and several canonicalised copies of its
  body, in memory;
- policy: a signature past `dkim_max_signatures`, not verified;
- permerror: no key or an unusable key in DNS;
- temperror: the key lookup timed out or failed, or
  `authentication.dkim_time_limit` ran out before it.

dkimpy is synchronous, so verification runs in an executor thread. Keys
are looked up through `dnsutil.TxtLookup` on the configured name servers.
The message is verified as the client sent it, without the Return-Path
and Received fields our SMTP server added.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass

import dkim
from dkim.util import InvalidTagValueList, parse_tag_value

from garrison.config.schema import Settings
from garrison.filters.dnsutil import TxtLookup, build_sync_resolver
from garrison.filters.resinfo import comment, pvalue
from garrison.filters.verdict import CheckResult, InboundMessage, Verdict
from garrison.observability.log import event

log = logging.getLogger("garrison.filters.dkim")

# RFC 8301 §3.2: verifiers must reject RSA keys under 1024 bits.
MIN_RSA_KEY_BITS = 1024
# The reason given for a signature that was not verified because the
# message exceeds dkim_max_message_size.
UNVERIFIED_TOO_LARGE = "message too large to verify"


@dataclass(frozen=True, slots=True)
class SignatureResult:
    """The outcome for one DKIM-Signature field.

    `domain` and `selector` are the d= and s= tags, lower case, or "" when
    the field does not parse. `b_prefix` is the start of the b= tag, which
    distinguishes signatures of one domain (RFC 6008).
    """

    result: str
    domain: str
    selector: str
    b_prefix: str
    reason: str = ""

    def resinfo(self) -> str:
        """Format the result as an RFC 8601 resinfo string."""
        parts = [f"dkim={self.result}"]
        if self.reason:
            parts.append(comment(self.reason))
        if self.domain:
            parts.append(f"header.d={pvalue(self.domain)}")
        if self.selector:
            parts.append(f"header.s={pvalue(self.selector)}")
        if self.b_prefix:
            parts.append(f"header.b={pvalue(self.b_prefix)}")
        return " ".join(parts)


def parse_header(message: bytes) -> list[tuple[bytes, bytes]]:
    """Split the header section into (name, value) as dkimpy does.

    Raises dkim.MessageFormatError for a line that is no field, including a
    first line that starts with white space, for which dkimpy 1.1 raises
    IndexError.
    """
    try:
        headers, _body = dkim.rfc822_parse(message)
    except IndexError as exc:
        raise dkim.MessageFormatError("header starts with a continuation line") from exc
    return [(name, value) for name, value in headers]


def signature_fields(message: bytes) -> list[bytes]:
    """Return the values of the DKIM-Signature fields in the header, in order."""
    headers = parse_header(message)
    return [value for name, value in headers if name.lower() == b"dkim-signature"]


def _tags(value: bytes) -> tuple[str, str, str]:
    """Return (d, s, first 8 characters of b) of a signature, "" where missing."""
    try:
        tags = parse_tag_value(value)
    except InvalidTagValueList:
        return "", "", ""

    def text(name: bytes) -> str:
        raw = b"".join(tags.get(name, b"").split())
        return raw.decode("ascii", "replace")

    return text(b"d").lower(), text(b"s").lower(), text(b"b")[:8]


def _verify_one(verifier: dkim.DKIM, index: int, lookup: TxtLookup) -> tuple[str, str]:
    """Verify signature `index`; return (result, reason)."""
    lookup.reset()
    try:
        if verifier.verify(idx=index, dnsfunc=lookup):
            return "pass", ""
    except dkim.ValidationError as exc:
        if "body hash mismatch" in str(exc):
            return "fail", "body hash mismatch"
        return "neutral", str(exc)
    except (dkim.KeyFormatError, dkim.UnknownKeyTypeError) as exc:
        return "permerror", str(exc)
    except dkim.DKIMException as exc:
        return "neutral", str(exc)
    except ValueError as exc:
        # dkimpy 1.1 lets binascii.Error escape for a b= or bh= tag that is
        # not valid base64.
        return "neutral", f"invalid base64: {exc}"
    if lookup.temporary_error:
        return "temperror", "key lookup failed"
    if lookup.missing:
        return "permerror", "no key"
    return "fail", "signature did not verify"


def verify_message(
    message: bytes,
    lookup: TxtLookup,
    *,
    max_signatures: int,
    timeout: float,
    too_large: bool = False,
    time_limit: float | None = None,
) -> list[SignatureResult]:
    """Verify the message's DKIM signatures; blocking, so run it in an executor.

    `message` is the whole message as received, or only its header section
    when `too_large` is set, in which case no signature is verified.
    `time_limit` bounds the key lookups of all signatures together. Never
    raises for a malformed message: what cannot be verified gets neutral or
    permerror.
    """
    lookup.start(time_limit)
    try:
        fields = signature_fields(message)
    except dkim.DKIMException:
        # dkimpy rejects a header line without a colon. The pipeline accepts
        # such a message, so a signature in it is reported, not verified.
        header = message.partition(b"\r\n\r\n")[0].lower()
        if b"dkim-signature" not in header:
            return []
        return [SignatureResult("neutral", "", "", "", "malformed header section")]
    verifier = None
    if fields and not too_large:
        verifier = dkim.DKIM(
            message, minkey=MIN_RSA_KEY_BITS, timeout=timeout, logger=_QUIET
        )
    results = []
    for index, value in enumerate(fields):
        domain, selector, b_prefix = _tags(value)
        if index >= max_signatures:
            result, reason = "policy", "too many signatures, not verified"
        elif verifier is None:
            result, reason = "neutral", UNVERIFIED_TOO_LARGE
        else:
            result, reason = _verify_one(verifier, index, lookup)
        results.append(SignatureResult(result, domain, selector, b_prefix, reason))
    return results


# dkimpy logs each failed signature at ERROR with message details; the check
# logs one line of its own instead.
_QUIET = logging.getLogger("garrison.filters.dkim.dkimpy")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


class DKIMCheck:
    """Verifies the DKIM signatures of a message."""

    name = "dkim"

    def __init__(
        self,
        settings: Settings,
        lookup: TxtLookup | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.executor = executor
        self.settings = settings.authentication
        self.timeout = settings.dns.timeout
        self.resolver = build_sync_resolver(settings)
        self.lookup = lookup

    def _verify(self, message: InboundMessage) -> list[SignatureResult]:
        # A lookup per call, because its error flags belong to one message.
        lookup = self.lookup or TxtLookup(self.resolver)
        too_large = message.blob.size > self.settings.dkim_max_message_size
        if too_large:
            # The header section is enough to name the signatures.
            data = message.header[message.trace_end :] + b"\r\n"
        else:
            data = message.read()[message.trace_end :]
        return verify_message(
            data,
            lookup,
            max_signatures=self.settings.dkim_max_signatures,
            timeout=self.timeout,
            too_large=too_large,
            time_limit=self.settings.dkim_time_limit,
        )

    async def check(self, message: InboundMessage, verdict: Verdict) -> CheckResult:
        started = time.monotonic()
        try:
            loop = asyncio.get_running_loop()
            signatures = await loop.run_in_executor(
                self.executor, self._verify, message
            )
            error = None
        except OSError as exc:
            signatures = []
            error = exc
        if error is not None:
            auth_results = [f"dkim=temperror {comment('message could not be read')}"]
        elif signatures:
            auth_results = [signature.resinfo() for signature in signatures]
        else:
            auth_results = ["dkim=none"]
        event(
            log,
            "dkim",
            logging.ERROR if error else logging.INFO,
            queue_id=message.queue_id,
            signatures=len(signatures),
            results=" ".join(f"{s.domain or '-'}:{s.result}" for s in signatures)
            or None,
            error=error,
            duration_ms=round((time.monotonic() - started) * 1000),
        )
        return CheckResult(
            self.name, auth_results=auth_results, details={"signatures": signatures}
        )
