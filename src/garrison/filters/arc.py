"""ARC verification of inbound mail (RFC 8617) with dkimpy.

`ARCCheck` validates the ARC chain of a message and returns
`arc=pass|fail|none` with `smtp.remote-ip`, a property RFC 8617 adds for
the arc method, and, for a chain that was evaluated, a comment naming the
newest sealer. `details`
carries the chain validation result and the d= of the newest ARC-Seal,
for DMARC: a passing chain overrides a DMARC failure only when that domain
is in `authentication.arc_trusted_sealers` (empty by default), because
anyone can seal a chain, and only a sealer we trust vouches for the
authentication results it recorded.

A message over `authentication.dkim_max_message_size` is not verified
and gets `arc=none` with a comment. The key lookups of one chain share
the `authentication.dkim_time_limit` budget, since a chain may carry many
ARC sets with two keys each, and dkimpy 1.1 verifies every set. A failed
key lookup makes the chain fail, since RFC 8617 defines no temporary
error for ARC, and the comment names the failed lookup. dkimpy is
synchronous, so verification runs in an executor thread, with keys looked
up through `dnsutil.TxtLookup`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor
from dataclasses import dataclass

import dkim

from garrison.config.schema import Settings
from garrison.filters.dkim_verify import MIN_RSA_KEY_BITS
from garrison.filters.dnsutil import TxtLookup, build_sync_resolver
from garrison.filters.resinfo import comment, pvalue
from garrison.filters.verdict import CheckResult, InboundMessage, Verdict
from garrison.observability.log import event

log = logging.getLogger("garrison.filters.arc")

_QUIET = logging.getLogger("garrison.filters.arc.dkimpy")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


@dataclass(frozen=True, slots=True)
class ChainResult:
    """The chain validation status, the newest instance and its sealer."""

    result: str
    instance: int = 0
    sealer: str = ""
    reason: str = ""


def verify_chain(
    message: bytes,
    lookup: TxtLookup,
    timeout: float,
    time_limit: float | None = None,
) -> ChainResult:
    """Validate the ARC chain; blocking, so run it in an executor. Never raises.

    `time_limit` bounds the key lookups of all ARC sets together.
    """
    lookup.start(time_limit)
    try:
        verifier = dkim.ARC(
            message, minkey=MIN_RSA_KEY_BITS, timeout=timeout, logger=_QUIET
        )
        status, instances, reason = verifier.verify(dnsfunc=lookup)
    except dkim.DKIMException as exc:
        return ChainResult("fail", reason=str(exc))
    except ValueError as exc:
        # dkimpy 1.1 lets binascii.Error escape for invalid base64 in b=.
        return ChainResult("fail", reason=f"invalid base64: {exc}")
    except IndexError:
        # dkimpy 1.1 raises it for a header that starts with white space.
        return ChainResult("fail", reason="malformed header section")
    if status == dkim.CV_None:
        return ChainResult("none")
    newest = instances[0] if instances else {}
    instance = int(newest.get("instance", 0))
    sealer = newest.get("as-domain", b"").decode("ascii", "replace").lower()
    if status == dkim.CV_Pass:
        return ChainResult("pass", instance, sealer)
    if lookup.temporary_error:
        reason = "key lookup failed"
    # RFC 8617 §5.2: a chain that reports a failure (status None from
    # dkimpy) has ended, and its validation result is fail.
    return ChainResult("fail", instance, sealer, reason)


class ARCCheck:
    """Validates the ARC chain of a message."""

    name = "arc"

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

    def _verify(self, message: InboundMessage) -> ChainResult:
        if b"arc-seal" not in message.header[message.trace_end :].lower():
            return ChainResult("none")
        if message.blob.size > self.settings.dkim_max_message_size:
            return ChainResult("none", reason="message too large to verify")
        lookup = self.lookup or TxtLookup(self.resolver)
        return verify_chain(
            message.read()[message.trace_end :],
            lookup,
            self.timeout,
            self.settings.dkim_time_limit,
        )

    async def check(self, message: InboundMessage, verdict: Verdict) -> CheckResult:
        started = time.monotonic()
        try:
            loop = asyncio.get_running_loop()
            chain = await loop.run_in_executor(self.executor, self._verify, message)
        except OSError:
            chain = ChainResult("none", reason="message could not be read")
        parts = [f"arc={chain.result}"]
        notes = []
        if chain.sealer:
            notes.append(f"as.{chain.instance}.d={chain.sealer}")
        if chain.reason:
            notes.append(chain.reason)
        if notes:
            parts.append(comment(", ".join(notes)))
        if message.client_ip:
            parts.append(f"smtp.remote-ip={pvalue(message.client_ip)}")
        event(
            log,
            "arc",
            queue_id=message.queue_id,
            result=chain.result,
            instance=chain.instance or None,
            sealer=chain.sealer or None,
            reason=chain.reason or None,
            duration_ms=round((time.monotonic() - started) * 1000),
        )
        return CheckResult(
            self.name,
            auth_results=[" ".join(parts)],
            details={"result": chain.result, "sealer": chain.sealer},
        )
