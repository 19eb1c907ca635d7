"""Failed-login tracking shared by SMTP AUTH, IMAP and POP3.

`AuthLockout.record_failure(ip, account)` counts a failed login against the
client IP address and against the account name and returns the delay to
wait before the failure reply: `auth_failure_delay` doubled for each earlier
failure counted against either key, capped at `max_auth_failure_delay`.
With the defaults (1 s, cap 16 s) the delays are 1, 2, 4, 8, 16, 16 ... s.
Failures older than `auth_failure_window` seconds are forgotten.

Only the IP address can be banned, after `ban_after_failures` failures.
Failures counted against an account only slow down the failure replies for
that name: a correct password is never delayed and never rejected, so the
real user still logs in at once from an address without failures.

Under the supervisor, automatic bans are kept in the workers' shared table
(`garrison.net.shared`), so a ban set by one worker holds in every worker.
The connection limiter also stores each automatic ban in the database, so
`garrison ban list` shows it and `garrison ban remove` lifts it.
Stored bans persist across restarts. When an administrator removes a ban,
the worker that notices it clears its failure counts for the address and
leaves a mark in the shared table, so the other workers drop the failures
they counted before it too.
The failures of an IP address are also counted in the shared table, so
the ban comes after `ban_after_failures` failures over all workers. That
count uses a fixed window from the first failure, while the delays use
this process's sliding window.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

from garrison.config.schema import LimitsSettings
from garrison.net.shared import SharedTable
from garrison.observability.log import event

log = logging.getLogger("garrison.limits")

# Tracked IP addresses and account names above which expired entries are
# pruned at the next failure, so a spread-out attack cannot grow memory
# without bound.
_PRUNE_THRESHOLD = 10_000


class AuthLockout:
    """Failed-login counters per IP address and per account, and IP bans."""

    def __init__(
        self,
        limits: LimitsSettings,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedTable | None = None,
        worker: int = 0,
    ) -> None:
        """Track failures in this process; bans also go to `shared` when given.

        The shared table measures time with `time.monotonic`, so `clock`
        must be that clock when `shared` is given.
        """
        self.limits = limits
        self.clock = clock
        self.shared = shared
        self.worker = worker
        self._by_ip: dict[str, deque[float]] = {}
        self._by_account: dict[str, deque[float]] = {}
        self._banned_until: dict[str, float] = {}
        self._max_tracked = max(64, limits.ban_after_failures)
        # Called with (ip, failures) when this process bans an address, so
        # the ban can be stored for `garrison ban list` and `remove`.
        self.on_ban: Callable[[str, int], None] | None = None

    def banned_since(self, ip: str) -> float | None:
        """Return when the automatic ban of `ip` began (time.time()), or None."""
        if not self.is_banned(ip):
            return None
        until = self._banned_until.get(ip)
        if until is None and self.shared is not None:
            until = self.shared.banned_until(_ban_key(ip))
        assert until is not None
        started = until - self.limits.ban_duration
        return time.time() - (self.clock() - started)

    def _count_shared(self, ip: str, now: float) -> int:
        """Count a failure of `ip` in the shared table; return the workers' total.

        The shared count uses a fixed window that starts at the first
        failure and lasts `auth_failure_window`, an approximation of the
        sliding window kept in this process.
        """
        assert self.shared is not None
        key = _failures_key(ip)
        started = self.shared.banned_until(key)
        if not started or now - started > self.limits.auth_failure_window:
            self.shared.reset(key)
            self.shared.ban(key, now)
        self.shared.add(key, self.worker, 1)
        return self.shared.total(key)

    def lift(self, ip: str) -> None:
        """End the automatic ban of `ip` and forget its failures."""
        self._banned_until.pop(ip, None)
        self._by_ip.pop(ip, None)
        if self.shared is not None:
            self.shared.ban(_ban_key(ip), 0.0)
            # The time of the removal, for the other workers' failure counts.
            self.shared.ban(_clear_key(ip), self.clock())
            self.shared.reset(_failures_key(ip))
        event(log, "unban", ip=ip, reason="removed by an administrator")

    def is_banned(self, ip: str) -> bool:
        """Return whether `ip` is under an automatic ban now."""
        until = self._banned_until.get(ip)
        if until is None:
            if self.shared is None:
                return False
            until = self.shared.banned_until(_ban_key(ip))
            return until > self.clock()
        if until <= self.clock():
            del self._banned_until[ip]
            return False
        return True

    def record_failure(
        self, ip: str, account: str, base_delay: float | None = None
    ) -> float:
        """Count one failed login; return the delay in seconds before its reply.

        The delay is `base_delay` (default `auth_failure_delay`) doubled for
        each earlier failure counted against `ip` or `account`. Bans `ip`
        for `ban_duration` seconds when its failures within the window reach
        `ban_after_failures`.
        """
        now = self.clock()
        if self.shared is not None:
            # Failures counted before a ban was removed no longer count.
            cleared = self.shared.banned_until(_clear_key(ip))
            times = self._by_ip.get(ip)
            while cleared and times and times[0] <= cleared:
                times.popleft()
        ip_failures = self._count(self._by_ip, ip, now)
        if self.shared is not None:
            ip_failures = max(ip_failures, self._count_shared(ip, now))
        account_failures = self._count(self._by_account, account.lower(), now)
        limits = self.limits
        reached = limits.ban_after_failures and ip_failures >= limits.ban_after_failures
        if reached and not self.is_banned(ip):
            self._banned_until[ip] = now + limits.ban_duration
            if self.shared is not None:
                self.shared.ban(_ban_key(ip), now + limits.ban_duration)
            if self.on_ban is not None:
                self.on_ban(ip, ip_failures)
            event(
                log,
                "ban",
                level=logging.WARNING,
                ip=ip,
                failures=ip_failures,
                duration=limits.ban_duration,
            )
        earlier = max(ip_failures, account_failures) - 1
        # Cap the exponent first so that a long attack cannot overflow the float.
        base = limits.auth_failure_delay if base_delay is None else base_delay
        delay = base * 2 ** min(earlier, 32)
        return min(delay, limits.max_auth_failure_delay)

    def failures(self, ip: str) -> int:
        """Return the failures counted against `ip` within the window."""
        return len(self._expire(self._by_ip.get(ip), self.clock()))

    def _count(self, table: dict[str, deque[float]], key: str, now: float) -> int:
        if len(table) > _PRUNE_THRESHOLD:
            self._prune(table, now)
        times = table.get(key)
        if times is None:
            # Counts past the ban threshold change nothing, so each key keeps
            # a bounded number of timestamps.
            times = table[key] = deque(maxlen=self._max_tracked)
        self._expire(times, now)
        times.append(now)
        return len(times)

    def _expire(self, times: deque[float] | None, now: float) -> deque[float]:
        if times is None:
            return deque()
        cutoff = now - self.limits.auth_failure_window
        while times and times[0] <= cutoff:
            times.popleft()
        return times

    def _prune(self, table: dict[str, deque[float]], now: float) -> None:
        for key in [
            key for key, times in table.items() if not self._expire(times, now)
        ]:
            del table[key]
        for ip in [ip for ip, until in self._banned_until.items() if until <= now]:
            del self._banned_until[ip]


def _ban_key(ip: str) -> str:
    return f"ban:{ip}"


def _clear_key(ip: str) -> str:
    return f"cleared:{ip}"


def _failures_key(ip: str) -> str:
    return f"failures:{ip}"
