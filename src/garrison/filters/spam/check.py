"""The anti-spam check in the inbound chain (`MessageCheck` named "spam").

For each message it adds up:
- the scores the earlier checks put in the verdict (the reputation
  check's DNSBL_*/DNSWL_* symbols and anything else already there);
- the sender-authentication symbols read from the "spf", "dkim" and
  "dmarc" results (an absent check gives no symbol);
- the header and structure rules (`rules.content_symbols`);
- per recipient account, the classifier's BAYES_SPAM or BAYES_HAM from
  that account's user, domain and server token counts.

Actions, per `[spam]`:
- every scored message gets X-Spam-Flag, X-Spam-Score and X-Spam-Status,
  and incoming fields of those names are stripped;
- an account whose score reaches `junk_score` gets its copy in Junk;
- the message is quarantined when every account's score reaches
  `quarantine_score` (when set);
- it is rejected with 550 5.7.1 when every account's score reaches
  `reject_score`.

Accounts the reputation check allow-lists are never filed into Junk, and
their presence stops the quarantine and the reject. The allow list is the
reputation result's details["allow"]: True for all recipients, or a
collection of account ids or recipient addresses.

The written fields and the reported symbols are those of the highest
scoring account, because one stored copy serves every recipient.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from garrison.config.schema import SpamSettings
from garrison.db.engine import connect
from garrison.filters.spam.rules import auth_symbols
from garrison.filters.spam.scoring import Analysis, BayesResult, Scorer
from garrison.filters.spam.tokens import SERVER_SCOPE, SqlTokenCounts, recipient_scopes
from garrison.filters.verdict import CheckResult, InboundMessage, Verdict
from garrison.observability.log import event
from garrison.smtp import replies
from garrison.store import MailStore

log = logging.getLogger("garrison.filters.spam")

SPAM_FIELDS = frozenset(
    {"x-spam-flag", "x-spam-score", "x-spam-status", "x-spam-level"}
)
_AUTH_CHECKS = ("spf", "dkim", "dmarc")


@dataclass(frozen=True, slots=True)
class AccountScore:
    """The score of one recipient account and the classifier's part in it."""

    account_id: int
    score: float
    bayes: BayesResult | None


class SpamCheck:
    """Scores inbound mail and decides Junk, quarantine or reject."""

    name = "spam"

    def __init__(self, settings: SpamSettings, store: MailStore) -> None:
        self.settings = settings
        self.scorer = Scorer(settings)
        self.store = store
        # Reads use a connection of their own, on the event loop thread.
        self.counts = SqlTokenCounts(connect(store.settings.db_path))

    def close(self) -> None:
        """Close the read connection."""
        self.counts.conn.close()

    async def check(
        self, message: InboundMessage, verdict: Verdict
    ) -> CheckResult | None:
        try:
            analysis = await asyncio.to_thread(self._analyse, message)
        except OSError as exc:
            event(
                log,
                "spam_check_failed",
                logging.ERROR,
                queue_id=message.queue_id,
                error=exc,
            )
            return None
        base = dict(analysis.symbols)
        base.update(self.scorer.rescore(auth_symbols(_auth_results(verdict))))
        prior = verdict.score
        scores = self._account_scores(message, analysis, prior + sum(base.values()))
        worst = max(scores, key=lambda item: item.score)
        symbols = dict(base)
        if worst.bayes is not None:
            symbols.update(worst.bayes.symbols)
        result = CheckResult(self.name, symbols=symbols, strip_headers=set(SPAM_FIELDS))
        result.headers = _spam_fields(
            prior + sum(symbols.values()), {**verdict.symbols, **symbols}, self.settings
        )
        self._act(message, verdict, scores, result)
        result.details = {
            "score": round(worst.score, 2),
            "accounts": {item.account_id: round(item.score, 2) for item in scores},
            "probability": None if worst.bayes is None else worst.bayes.probability,
        }
        return result

    def _analyse(self, message: InboundMessage) -> Analysis:
        if message.blob.size <= self.settings.max_scan_size:
            data = message.read()
        else:
            # NOTE: only the header section is scored for a larger message.
            data = message.header + b"\r\n"
        return self.scorer.analyse(data, datetime.now(UTC))

    def _account_scores(
        self, message: InboundMessage, analysis: Analysis, base: float
    ) -> list[AccountScore]:
        accounts = {
            account.id: account
            for rcpt in message.envelope.recipients
            for account in rcpt.accounts
        }
        if not accounts:
            bayes = self._bayes(message, analysis, [SERVER_SCOPE])
            return [AccountScore(0, base + _sum(bayes), bayes)]
        scores = []
        for account in accounts.values():
            scopes = recipient_scopes(account.address, account.domain)
            bayes = self._bayes(message, analysis, scopes)
            scores.append(AccountScore(account.id, base + _sum(bayes), bayes))
        return scores

    def _bayes(
        self, message: InboundMessage, analysis: Analysis, scopes: list[str]
    ) -> BayesResult | None:
        """Classify for `scopes`; a failed database read leaves the classifier out."""
        try:
            return self.scorer.bayes(self.counts, analysis, scopes)
        except sqlite3.Error as exc:
            event(
                log,
                "spam_classifier_failed",
                logging.ERROR,
                queue_id=message.queue_id,
                error=exc,
            )
            return None

    def _act(
        self,
        message: InboundMessage,
        verdict: Verdict,
        scores: list[AccountScore],
        result: CheckResult,
    ) -> None:
        settings = self.settings
        allowed = _allowed_accounts(verdict, message)
        lowest = min(item.score for item in scores)
        if not allowed and lowest >= settings.reject_score:
            result.reject = replies.SPAM_REJECTED
            return
        if (
            not allowed
            and settings.quarantine_score
            and lowest >= settings.quarantine_score
        ):
            result.quarantine = f"spam score {lowest:.1f}"
            return
        result.junk_accounts = {
            item.account_id
            for item in scores
            if item.score >= settings.junk_score
            and item.account_id not in allowed
            and item.account_id != 0
        }


def _sum(bayes: BayesResult | None) -> float:
    return 0.0 if bayes is None else sum(bayes.symbols.values())


def _auth_results(verdict: Verdict) -> dict[str, list[str]]:
    return {
        name: verdict.results[name].auth_results
        for name in _AUTH_CHECKS
        if name in verdict.results
    }


def _allowed_accounts(verdict: Verdict, message: InboundMessage) -> set[int]:
    """Return the ids of the accounts the reputation check allow-lists."""
    reputation = verdict.results.get("reputation")
    if reputation is None:
        return set()
    allow = reputation.details.get("allow")
    if allow is True:
        return {
            account.id
            for rcpt in message.envelope.recipients
            for account in rcpt.accounts
        }
    if not isinstance(allow, Collection) or isinstance(allow, (str, bytes)):
        return set()
    allowed = set()
    listed = {str(item).lower() for item in allow}
    for rcpt in message.envelope.recipients:
        for account in rcpt.accounts:
            if (
                account.id in allow
                or rcpt.address.lower() in listed
                or account.address.lower() in listed
            ):
                allowed.add(account.id)
    return allowed


def _spam_fields(
    score: float, symbols: dict[str, float], settings: SpamSettings
) -> list[tuple[str, str]]:
    """Return X-Spam-Flag, X-Spam-Score and X-Spam-Status in SpamAssassin's format."""
    flagged = score >= settings.add_header_score
    tests = ",".join(sorted(name for name, value in symbols.items() if value))
    status = (
        f"{'Yes' if flagged else 'No'}, score={score:.1f}"
        f" required={settings.add_header_score:.1f} tests={tests or 'none'}"
    )
    return [
        ("X-Spam-Flag", "YES" if flagged else "NO"),
        ("X-Spam-Score", f"{score:.1f}"),
        ("X-Spam-Status", status),
    ]
