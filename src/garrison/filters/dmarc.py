"""DMARC evaluation of inbound mail (RFC 7489).

`DMARCDiscovery` runs before SPF: it starts the policy lookup for the
author domain as a task, so that the DMARC lookups overlap with the SPF
and DKIM checks. `DMARCCheck` runs after SPF, DKIM and ARC, waits for
that task (or looks the policy up itself when discovery did not run),
checks identifier alignment and applies the policy.

Result: `dmarc=<pass|fail|none|temperror|permerror> (p=... dis=...)
header.from=<domain>`, where `dis` is the disposition the policy asks for
after `pct` sampling and the ARC override. The local domain policy below
may then weaken it for some or all recipients.

- Policy discovery (§6.6.3): TXT at `_dmarc.<author domain>`, else at
  `_dmarc.<organizational domain>`; `sp=` applies when the record came
  from the organizational domain of a subdomain. No record gives
  `dmarc=none`; a lookup failure gives `dmarc=temperror` and no action.
- Alignment (§3.1): an SPF pass whose MAIL FROM (or HELO) domain aligns,
  or a DKIM pass whose d= aligns, in relaxed or strict mode.
- `pct` (§6.6.4): a message outside the sample gets the next weaker
  policy: reject becomes quarantine, quarantine becomes none.
- A failure is overridden (disposition none) when the ARC chain passed
  and its newest sealer is in `authentication.arc_trusted_sealers`.
- Messages without exactly one From field naming one domain (§6.6.1) are
  treated as failing under p=reject with `authentication.dmarc_invalid_from
  = "reject"` (the default, since RFC 5322 §3.6 allows exactly one From
  field), so the local domain policy below applies to them too. Otherwise
  a message with no From field gets dmarc=none and any other such message
  dmarc=permerror. A From field with several addresses in one domain is
  evaluated for that domain.
- Local domain policy: each recipient's domain maps, through
  `authentication.dmarc_domain_policy`, to "enforce" (default),
  "quarantine-only" or "monitor". The message is rejected only when every
  recipient's domain enforces, since one SMTP reply covers all
  recipients. Otherwise p=reject and p=quarantine file the copies of
  accounts whose recipient domain enforces or is quarantine-only into
  Junk, and accounts of monitor domains get the message in INBOX.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.name
import dns.resolver

from garrison.config.schema import Settings
from garrison.filters.dkim_verify import UNVERIFIED_TOO_LARGE, SignatureResult
from garrison.filters.dmarc_record import (
    AuthorDomains,
    DMARCRecord,
    InvalidRecord,
    aligned,
    author_domains,
    is_dmarc_record,
    organizational_domain,
    parse_record,
)
from garrison.filters.resinfo import comment, pvalue
from garrison.filters.verdict import CheckResult, InboundMessage, Verdict
from garrison.observability.log import event
from garrison.queue.routing import build_resolver
from garrison.smtp import replies
from garrison.smtp.replies import Reply

log = logging.getLogger("garrison.filters.dmarc")

_WEAKER = {"reject": "quarantine", "quarantine": "none", "none": "none"}


@dataclass(frozen=True, slots=True)
class Discovery:
    """The outcome of policy discovery for one author domain.

    `status` is "found", "none" (no record), "temperror" or "permerror".
    `organizational` is true when the record came from the organizational
    domain in place of the author domain.
    """

    status: str
    record: DMARCRecord | None = None
    organizational: bool = False
    reason: str = ""


async def _txt_records(
    resolver: dns.asyncresolver.Resolver, name: str
) -> list[str] | None:
    """Return the TXT strings at `name`, [] for none, None on a temporary error."""
    try:
        answer = await resolver.resolve(
            dns.name.from_text(name), "TXT", search=False, raise_on_no_answer=False
        )
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.name.EmptyLabel, dns.name.LabelTooLong, dns.name.NameTooLong):
        return []
    except dns.exception.DNSException:
        # A timeout, SERVFAIL or REFUSED from every server, or a malformed
        # response: a retry may succeed.
        return None
    if answer.rrset is None:
        return []
    return [
        b"".join(rdata.strings).decode("utf-8", "replace") for rdata in answer.rrset
    ]


async def discover_policy(
    resolver: dns.asyncresolver.Resolver, domain: str
) -> Discovery:
    """Find the DMARC record for an author domain (RFC 7489 §6.6.3). Never raises."""
    organizational = organizational_domain(domain)
    for name, from_organizational in ((domain, False), (organizational, True)):
        if from_organizational and organizational == domain:
            break
        texts = await _txt_records(resolver, f"_dmarc.{name}.")
        if texts is None:
            return Discovery("temperror", reason=f"DNS lookup of _dmarc.{name} failed")
        records = [text for text in texts if is_dmarc_record(text)]
        if len(records) > 1:
            # §6.6.3 step 5: several records end discovery without a policy.
            return Discovery("none", reason=f"several DMARC records at _dmarc.{name}")
        if records:
            try:
                record = parse_record(records[0])
            except InvalidRecord as exc:
                return Discovery("permerror", reason=str(exc))
            return Discovery("found", record, from_organizational)
    return Discovery("none")


class DMARCDiscovery:
    """Starts policy discovery early so it overlaps with the SPF and DKIM checks."""

    name = "dmarc-discovery"

    def __init__(self, settings: Settings) -> None:
        self.resolver = build_resolver(settings)

    async def check(self, message: InboundMessage, verdict: Verdict) -> CheckResult:
        domain = author_domains(message.header[message.trace_end :]).single
        details: dict[str, object] = {}
        if domain is not None:
            task = asyncio.create_task(discover_policy(self.resolver, domain))
            details = {"domain": domain, "task": task}
        return CheckResult(self.name, details=details)


class DMARCCheck:
    """Applies the author domain's DMARC policy to the SPF and DKIM results."""

    name = "dmarc"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings.authentication
        self.resolver = build_resolver(settings)
        self.trusted_sealers = {
            sealer.lower().rstrip(".") for sealer in self.settings.arc_trusted_sealers
        }
        self.domain_policy = {
            domain.lower().rstrip("."): mode
            for domain, mode in self.settings.dmarc_domain_policy.items()
        }
        self.random = random.Random()

    async def check(self, message: InboundMessage, verdict: Verdict) -> CheckResult:
        started = time.monotonic()
        authors = author_domains(message.header[message.trace_end :])
        domain = authors.single
        if domain is None:
            result = self._invalid_from(message, authors)
            self._log(message, started, result, authors.domains[:1] or ("",))
            return result
        discovery = await self._discover(domain, verdict)
        result = self._evaluate(message, verdict, domain, discovery)
        self._log(message, started, result, (domain,))
        return result

    async def _discover(self, domain: str, verdict: Verdict) -> Discovery:
        early = verdict.results.get(DMARCDiscovery.name)
        if early is not None and early.details.get("domain") == domain:
            task = early.details["task"]
            assert isinstance(task, asyncio.Task)
            discovery: Discovery = await task
            return discovery
        return await discover_policy(self.resolver, domain)

    def _invalid_from(
        self, message: InboundMessage, authors: AuthorDomains
    ) -> CheckResult:
        if authors.fields == 0:
            reason = "no From field"
        elif authors.fields > 1:
            reason = "several From fields"
        elif len(authors.domains) > 1:
            reason = "several author domains"
        else:
            reason = "no valid author domain"
        if self.settings.dmarc_invalid_from == "reject":
            # RFC 5322 §3.6: a message has exactly one From field. Without
            # one author domain DMARC cannot be evaluated, so the message is
            # treated as failing under p=reject, per recipient domain.
            result = CheckResult(
                self.name,
                auth_results=[f"dmarc=permerror {comment(reason)}"],
                details={"result": "permerror"},
            )
            self._apply(result, message, "reject", replies.INVALID_FROM)
            return result
        status = "none" if authors.fields == 0 else "permerror"
        return CheckResult(
            self.name,
            auth_results=[f"dmarc={status} {comment(reason)}"],
            details={"result": status, "action": "accept"},
        )

    def _evaluate(
        self,
        message: InboundMessage,
        verdict: Verdict,
        domain: str,
        discovery: Discovery,
    ) -> CheckResult:
        from_property = f"header.from={pvalue(domain)}"
        record = discovery.record
        if record is None:
            note = f" {comment(discovery.reason)}" if discovery.reason else ""
            return CheckResult(
                self.name,
                auth_results=[f"dmarc={discovery.status}{note} {from_property}"],
                details={"result": discovery.status, "action": "accept"},
            )
        policy = record.policy
        if discovery.organizational and record.subdomain_policy:
            # RFC 7489 §6.3: sp= is the policy for subdomains of the
            # organizational domain that have no record of their own.
            policy = record.subdomain_policy

        passed = self._spf_aligned(verdict, domain, record) or self._dkim_aligned(
            verdict, domain, record
        )
        notes = [f"p={policy}"]
        if passed:
            disposition = "none"
        else:
            disposition = policy
            # RFC 7489 §6.6.4: outside the pct sample, the next weaker policy.
            if record.pct < 100 and self.random.randrange(100) >= record.pct:
                disposition = _WEAKER[policy]
            sealer = self._trusted_arc_sealer(verdict)
            if sealer and disposition != "none":
                notes.append(f"arc=pass as.d={sealer}")
                disposition = "none"
            elif disposition == "reject" and self._dkim_unverified(verdict, domain, record):
                # An aligned signature that this server left unverified
                # (the message was over dkim_max_message_size) may be
                # genuine: file into Junk rather than refuse real mail.
                notes.append("dkim=unverified")
                disposition = "quarantine"
        notes.append(f"dis={disposition}")

        status = "pass" if passed else "fail"
        result = CheckResult(
            self.name,
            auth_results=[f"dmarc={status} {comment(' '.join(notes))} {from_property}"],
            details={"result": status, "policy": policy, "disposition": disposition},
        )
        reply = replies.DMARC_REJECTED.format(domain=domain)
        self._apply(result, message, disposition, reply)
        return result

    def _spf_aligned(self, verdict: Verdict, domain: str, record: DMARCRecord) -> bool:
        spf = verdict.results.get("spf")
        if spf is None or spf.details.get("result") != "pass":
            return False
        return aligned(str(spf.details.get("domain", "")), domain, record.aspf)

    def _dkim_aligned(self, verdict: Verdict, domain: str, record: DMARCRecord) -> bool:
        dkim_result = verdict.results.get("dkim")
        if dkim_result is None:
            return False
        signatures = dkim_result.details.get("signatures", [])
        assert isinstance(signatures, list)
        return any(
            isinstance(signature, SignatureResult)
            and signature.result == "pass"
            and aligned(signature.domain, domain, record.adkim)
            for signature in signatures
        )

    def _dkim_unverified(self, verdict: Verdict, domain: str, record: DMARCRecord) -> bool:
        """Return whether an aligned signature went unverified for its size."""
        dkim_result = verdict.results.get("dkim")
        if dkim_result is None:
            return False
        signatures = dkim_result.details.get("signatures", [])
        assert isinstance(signatures, list)
        return any(
            isinstance(signature, SignatureResult)
            and signature.reason == UNVERIFIED_TOO_LARGE
            and aligned(signature.domain, domain, record.adkim)
            for signature in signatures
        )

    def _trusted_arc_sealer(self, verdict: Verdict) -> str:
        arc = verdict.results.get("arc")
        if arc is None or arc.details.get("result") != "pass":
            return ""
        sealer = str(arc.details.get("sealer", ""))
        return sealer if sealer in self.trusted_sealers else ""

    def _mode(self, address: str) -> str:
        recipient_domain = address.rpartition("@")[2].lower().rstrip(".")
        return self.domain_policy.get(recipient_domain, "enforce")

    def _apply(
        self,
        result: CheckResult,
        message: InboundMessage,
        disposition: str,
        reply: Reply,
    ) -> None:
        """Set the reject or Junk action of a disposition, per recipient domain."""
        if disposition == "none":
            result.details["action"] = "accept"
            return
        modes = [
            (self._mode(rcpt.address), rcpt) for rcpt in message.envelope.recipients
        ]
        if disposition == "reject" and all(mode == "enforce" for mode, _ in modes):
            result.reject = reply
            result.details["action"] = "reject"
            return
        acting = [rcpt for mode, rcpt in modes if mode != "monitor"]
        if len(acting) == len(modes):
            result.junk = True
        else:
            result.junk_accounts = {
                account.id for rcpt in acting for account in rcpt.accounts
            }
        result.details["action"] = "junk" if acting else "accept"

    def _log(
        self,
        message: InboundMessage,
        started: float,
        result: CheckResult,
        domains: tuple[str, ...],
    ) -> None:
        event(
            log,
            "dmarc",
            queue_id=message.queue_id,
            domain=domains[0] or None,
            result=result.details.get("result"),
            policy=result.details.get("policy"),
            disposition=result.details.get("disposition"),
            action=result.details.get("action"),
            duration_ms=round((time.monotonic() - started) * 1000),
        )
