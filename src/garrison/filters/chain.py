"""Builds the chain of checks that inbound mail runs through.

The order matters, because later checks read earlier results: reputation
and the local allow and block lists first, then SPF, DKIM, ARC and DMARC
(which needs SPF and DKIM), then the anti-spam scoring (which reads all of
them).
"""

from __future__ import annotations

from garrison.config.schema import Settings
from garrison.filters.authentication import authentication_checks
from garrison.filters.rspamd import check_from_settings as rspamd_check
from garrison.filters.reputation import reputation_check
from garrison.filters.spam import SpamCheck
from garrison.filters.verdict import CheckChain, MessageCheck
from garrison.store import MailStore


def checks_from_settings(settings: Settings, store: MailStore) -> CheckChain:
    """Return the checks the settings turn on, in the order they run."""
    checks: list[MessageCheck] = []
    checks += authentication_checks(settings)
    if settings.spam.enabled:
        checks.append(SpamCheck(settings.spam, store))
    # rspamd runs last: its reply does not depend on the checks before it,
    # and a message they reject is never sent to it.
    rspamd = rspamd_check(settings, store)
    if rspamd is not None:
        checks.append(rspamd)
    # Keep this block last. The reputation check runs first, because its
    # allow decisions and DNSBL symbols feed the others, but it joins the
    # chain only when DNS lists are set or other checks run: alone, the local
    # lists are enforced in the SMTP dialogue and it would add nothing.
    reputation = reputation_check(settings)
    if checks or reputation.reputation.has_dns_lists:
        checks.insert(0, reputation)
    return CheckChain(checks)
