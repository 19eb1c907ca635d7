"""SPF check of inbound mail (RFC 7208) with pyspf.

`SPFCheck` evaluates the MAIL FROM identity, or the HELO identity when
MAIL FROM is the null reverse-path (RFC 7208 §2.4), and returns
`spf=<result> smtp.mailfrom=<domain>` (or `smtp.helo=<name>`) plus a
Received-SPF field (RFC 7208 §9.1). `details` carries the result, the
identity and its domain for DMARC.

pyspf is synchronous, so `evaluate` runs in an executor thread. pyspf
looks names up through its module-level `spf.DNSLookup`, which this module
replaces once with a hook that calls the lookup set for the current
thread. Without one the hook raises `TempError`, so pyspf never falls back
to its own resolver. The check's lookup is `dnsutil.RecordLookup` over
`settings.dns`; tests pass another lookup with the same signature.

A `fail` is only recorded by default, so that DMARC decides (RFC 7489
§10.1); `authentication.spf_fail_action = "reject"` rejects it with
550 5.7.23. temperror and permerror are always only recorded.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

import spf as pyspf

from garrison.config.schema import Settings
from garrison.filters.dnsutil import RecordLookup, build_sync_resolver
from garrison.filters.resinfo import pvalue
from garrison.filters.verdict import CheckResult, InboundMessage, Verdict
from garrison.observability.log import event
from garrison.smtp import replies

log = logging.getLogger("garrison.filters.spf")

# (name, qtype, timeout) -> [((name, qtype), data), ...], as RecordLookup.
Lookup = Callable[[str, str, "float | None"], list[tuple[tuple[str, str], object]]]

# pyspf 2.0 still returns the RFC 4408 names for two results.
_OLD_RESULTS = {"unknown": "permerror", "error": "temperror"}

_thread_lookup = threading.local()

# pyspf copies text from the sender's SPF record (an unknown mechanism, for
# one) into the Received-SPF value, and a TXT string may contain CR and LF.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _dns_lookup(
    name: str, qtype: str, strict: object = True, timeout: float | None = None
) -> list[tuple[tuple[str, str], object]]:
    lookup = getattr(_thread_lookup, "lookup", None)
    if lookup is None:
        raise pyspf.TempError("no DNS lookup is set for this thread")
    return lookup(name, qtype, timeout)  # type: ignore[no-any-return]


pyspf.DNSLookup = _dns_lookup


@dataclass(frozen=True, slots=True)
class SPFOutcome:
    """The result of one SPF evaluation.

    `result` is an RFC 7208 §2.6 result name, and `identity` is "mailfrom"
    or "helo". `received_spf` is the value of the Received-SPF field, or ""
    when nothing was evaluated.
    """

    result: str
    identity: str
    domain: str
    explanation: str = ""
    received_spf: str = ""


def evaluate(
    ip: str,
    mail_from: str,
    helo: str,
    lookup: Lookup,
    *,
    receiver: str,
    time_limit: float,
) -> SPFOutcome:
    """Evaluate SPF for one SMTP client; blocking, so run it in an executor.

    Returns `none` when there is no identity to check. Never raises: an
    error inside pyspf becomes `temperror`.
    """
    identity = "mailfrom" if mail_from else "helo"
    domain = mail_from.rpartition("@")[2] if mail_from else helo
    if not ip or not domain:
        return SPFOutcome("none", identity, domain.lower())
    previous = getattr(_thread_lookup, "lookup", None)
    _thread_lookup.lookup = lookup
    try:
        # RFC 7208 §4.6.4: querytime bounds the whole evaluation.
        query = pyspf.query(
            i=ip, s=mail_from, h=helo, receiver=receiver, querytime=time_limit
        )
        result, _code, explanation = query.check()
        result = _OLD_RESULTS.get(result, result)
        header = _CONTROL.sub(" ", query.get_header(result, receiver=receiver))
    except Exception as exc:  # noqa: BLE001 - pyspf must not fail the delivery
        # NOTE: pyspf raises plain exceptions for a few malformed inputs (an
        # invalid client address); they count as a temporary error here.
        return SPFOutcome("temperror", identity, domain.lower(), str(exc))
    finally:
        _thread_lookup.lookup = previous
    return SPFOutcome(result, identity, domain.lower(), explanation, header)


class SPFCheck:
    """Checks the SMTP client against the sender domain's SPF record."""

    name = "spf"

    def __init__(
        self,
        settings: Settings,
        lookup: Lookup | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.executor = executor
        self.settings = settings.authentication
        self.receiver = settings.server.hostname
        self.lookup = lookup or RecordLookup(build_sync_resolver(settings))

    async def check(self, message: InboundMessage, verdict: Verdict) -> CheckResult:
        started = time.monotonic()
        run = functools.partial(
            evaluate,
            message.client_ip,
            message.mail_from,
            message.helo,
            self.lookup,
            receiver=self.receiver,
            time_limit=self.settings.spf_time_limit,
        )
        outcome = await asyncio.get_running_loop().run_in_executor(self.executor, run)
        property_name = (
            "smtp.mailfrom" if outcome.identity == "mailfrom" else "smtp.helo"
        )
        checked = pvalue(outcome.domain or "unknown")
        result = CheckResult(
            self.name,
            auth_results=[f"spf={outcome.result} {property_name}={checked}"],
            details={
                "result": outcome.result,
                "identity": outcome.identity,
                "domain": outcome.domain,
            },
        )
        if outcome.received_spf:
            result.headers.append(("Received-SPF", outcome.received_spf))
        action = "accept"
        if outcome.result == "fail" and self.settings.spf_fail_action == "reject":
            action = self._reject_fail(message, result, outcome.domain)
        event(
            log,
            "spf",
            queue_id=message.queue_id,
            result=outcome.result,
            identity=outcome.identity,
            domain=outcome.domain,
            ip=message.client_ip,
            action=action,
            duration_ms=round((time.monotonic() - started) * 1000),
        )
        return result

    def _reject_fail(
        self, message: InboundMessage, result: CheckResult, domain: str
    ) -> str:
        """Reject an SPF fail, as `dmarc_domain_policy` allows per recipient domain.

        Only when every recipient's domain enforces is the message rejected.
        Otherwise accounts in quarantine-only domains get it in Junk and
        those in monitor domains in the INBOX. Returns the action taken.
        """
        policy = self.settings.dmarc_domain_policy
        modes = [
            (policy.get(rcpt.address.rpartition("@")[2].lower().rstrip("."), "enforce"), rcpt)
            for rcpt in message.envelope.recipients
        ]
        if all(mode == "enforce" for mode, _ in modes):
            # RFC 7372 §3.2: 5.7.23 when the rejection is an SPF fail.
            result.reject = replies.SPF_FAILED.format(domain=domain, ip=message.client_ip)
            return "reject"
        result.junk_accounts = {
            account.id
            for mode, rcpt in modes
            if mode != "monitor"
            for account in rcpt.accounts
        }
        return "junk" if result.junk_accounts else "accept"
