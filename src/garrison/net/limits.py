"""Connection limits per client IP address and per listener.

Every protocol server calls `ConnectionLimiter.admit(ip, listener)` first
thing in `handle()`. It returns an `Admission` to release when the
connection ends, or None when the connection must be rejected with the
protocol's temporary-failure reply (SMTP `421 4.7.0`, IMAP `* BYE`, POP3
`-ERR [SYS/TEMP]`). A connection is rejected when its IP address is banned
(stored ban or automatic ban from `AuthLockout`), when the address already
holds `max_connections_per_ip` connections, when it opened
`connection_rate_per_ip` connections in the last 60 seconds, or when the
listener holds `max_connections_per_listener` connections. Loopback
addresses get no exemption.

Rejections are logged as `event=limit`, at most one line per IP address and
reason every `rejection_log_interval` seconds; the line counts the
rejections it stands for.

Under the supervisor the open-connection counts per IP address and per
listener are kept in the workers' shared table (`garrison.net.shared`), so
the limits hold for the server as a whole. NOTE: the connection rate is
counted per worker, so with N workers a client can open up to N times
`connection_rate_per_ip` connections a minute.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from garrison.config.schema import LimitsSettings, Settings
from garrison.net.bans import BanCache, BanError, BanList
from garrison.net.lockout import AuthLockout
from garrison.net.shared import SharedTable, installed
from garrison.observability.log import event

log = logging.getLogger("garrison.limits")

RATE_WINDOW = 60.0
# Seconds after an automatic ban set by another worker by which its stored
# copy is written. A ban cache loaded later without it means that an
# administrator removed the ban.
BAN_STORE_MARGIN = 2.0

# Rejection reasons, as they appear in the `reason` field of the log line.
BANNED = "banned"
TOO_MANY_PER_IP = "max_connections_per_ip"
RATE_PER_IP = "connection_rate_per_ip"
TOO_MANY_PER_LISTENER = "max_connections_per_listener"


@dataclass
class Admission:
    """One admitted connection; `release()` must run once when it ends."""

    limiter: ConnectionLimiter
    ip: str
    listener: str
    # Whether the connection was counted in the shared table.
    shared: bool = field(default=False)
    released: bool = field(default=False)

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        self.limiter._release(self.ip, self.listener, self.shared)


class ConnectionLimiter:
    """Admission control for new connections, shared by the listeners of a worker."""

    def __init__(
        self,
        limits: LimitsSettings,
        lockout: AuthLockout,
        db_path: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        shared: tuple[SharedTable, int] | None = None,
    ) -> None:
        """Count connections in this process, and in `shared` (table, worker index) when given."""
        self.limits = limits
        self.lockout = lockout
        self.clock = clock
        self.shared = shared
        self.db_path = db_path
        self.bans = (
            BanCache(db_path, limits.ban_refresh_interval)
            if db_path is not None
            else None
        )
        self.last_rejection: str | None = None
        # Automatic bans this worker stored, with the time.time() they were.
        self._stored_bans: dict[str, float] = {}
        if db_path is not None:
            lockout.on_ban = self._store_ban
        self._open_by_ip: dict[str, int] = {}
        self._open_by_listener: dict[str, int] = {}
        self._recent_by_ip: dict[str, deque[float]] = {}
        # (ip, reason) -> (time of the last log line, rejections since then)
        self._log_state: dict[tuple[str, str], tuple[float, int]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimiter:
        """Build a limiter, with its own AuthLockout, from the `[limits]` settings."""
        shared = installed()
        lockout = AuthLockout(
            settings.limits,
            shared=shared[0] if shared is not None else None,
            worker=shared[1] if shared is not None else 0,
        )
        return cls(settings.limits, lockout, settings.db_path, shared=shared)

    def admit(self, ip: str, listener: str) -> Admission | None:
        """Count a new connection and return its Admission, or None to reject it.

        After a rejection, `last_rejection` names its reason until the next
        call, so the caller can pick its reply without another lookup.
        """
        reason = self._rejection_reason(ip, listener)
        self.last_rejection = reason
        if reason is not None:
            self._log_rejection(ip, listener, reason)
            return None
        counted = False
        if self.shared is not None:
            reason, counted = self._acquire_shared(ip, listener)
            if reason is not None:
                self.last_rejection = reason
                self._log_rejection(ip, listener, reason)
                return None
        self._open_by_ip[ip] = self._open_by_ip.get(ip, 0) + 1
        self._open_by_listener[listener] = self._open_by_listener.get(listener, 0) + 1
        return Admission(self, ip, listener, shared=counted)

    def _acquire_shared(self, ip: str, listener: str) -> tuple[str | None, bool]:
        """Take a place per IP and per listener in the shared table.

        Returns (rejection reason or None, whether the places were taken).
        With the table full, nothing is taken and the per-process counts
        that `_rejection_reason` checked decide.
        """
        assert self.shared is not None
        table, worker = self.shared
        limits = self.limits
        by_ip = table.try_add(_ip_key(ip), worker, limits.max_connections_per_ip)
        if by_ip is False:
            return TOO_MANY_PER_IP, False
        by_listener = table.try_add(
            _listener_key(listener), worker, limits.max_connections_per_listener
        )
        if by_listener is True and by_ip is True:
            return None, True
        if by_ip is True:
            table.add(_ip_key(ip), worker, -1)
        if by_listener is True:
            table.add(_listener_key(listener), worker, -1)
        if by_listener is False:
            return TOO_MANY_PER_LISTENER, False
        return None, False

    def open_connections(self, ip: str) -> int:
        """Return the connections open from `ip`, in every worker when counts are shared."""
        local = self._open_by_ip.get(ip, 0)
        if self.shared is None:
            return local
        return max(local, self.shared[0].total(_ip_key(ip)))

    def _rejection_reason(self, ip: str, listener: str) -> str | None:
        limits = self.limits
        now = self.clock()
        if self._auto_banned(ip):
            return BANNED
        if self.bans is not None and self.bans.is_banned(ip, time.time()):
            return BANNED
        # This process's counts; with a shared table, `_acquire_shared` then
        # checks the counts of all workers and takes the place in one step.
        if limits.max_connections_per_listener and (
            self._open_by_listener.get(listener, 0)
            >= limits.max_connections_per_listener
        ):
            return TOO_MANY_PER_LISTENER
        if limits.max_connections_per_ip and (
            self._open_by_ip.get(ip, 0) >= limits.max_connections_per_ip
        ):
            return TOO_MANY_PER_IP
        if limits.connection_rate_per_ip:
            recent = self._recent_by_ip.get(ip)
            if recent is None:
                recent = self._recent_by_ip[ip] = deque()
            while recent and recent[0] <= now - RATE_WINDOW:
                recent.popleft()
            if len(recent) >= limits.connection_rate_per_ip:
                return RATE_PER_IP
            # Only admitted connections count toward the rate, so a client
            # that keeps retrying is admitted again once its minute is over.
            recent.append(now)
            self._prune_rates(now)
        return None

    def _auto_banned(self, ip: str) -> bool:
        """Return whether an automatic ban of `ip` is in force.

        The stored copy of the ban decides once the ban cache has been
        reloaded after the ban was stored: when `garrison ban remove` has
        deleted it, the ban is lifted in this worker too.
        """
        since = self.lockout.banned_since(ip)
        if since is None:
            return False
        if self.bans is None:
            return True
        wall = time.time()
        if self.bans.is_banned(ip, wall):
            return True
        # The time by which the stored copy existed: known for a ban this
        # worker stored, estimated for one that another worker set.
        stored = self._stored_bans.get(ip, since + BAN_STORE_MARGIN)
        loaded_at = self.bans.loaded_at
        if loaded_at is not None and loaded_at > stored:
            self._stored_bans.pop(ip, None)
            self.lockout.lift(ip)
            return False
        return True

    def _store_ban(self, ip: str, failures: int) -> None:
        """Store an automatic ban in the database, off the event loop."""
        assert self.db_path is not None
        db_path, duration = self.db_path, self.limits.ban_duration

        def store() -> None:
            bans = BanList(db_path)
            try:
                bans.add(ip, f"automatic: {failures} failed logins", duration)
                self._stored_bans[ip] = time.time()
            except (sqlite3.Error, BanError) as exc:
                event(log, "ban_store_failed", level=logging.ERROR, ip=ip, error=exc)
            finally:
                bans.close()

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            store()
            return
        loop.run_in_executor(None, store)

    def _prune_rates(self, now: float) -> None:
        if len(self._recent_by_ip) <= 10_000:
            return
        cutoff = now - RATE_WINDOW
        idle = [
            ip
            for ip, recent in self._recent_by_ip.items()
            if not recent or recent[-1] <= cutoff
        ]
        for ip in idle:
            del self._recent_by_ip[ip]

    def _release(self, ip: str, listener: str, shared: bool) -> None:
        if shared and self.shared is not None:
            table, worker = self.shared
            table.add(_ip_key(ip), worker, -1)
            table.add(_listener_key(listener), worker, -1)
        for table, key in ((self._open_by_ip, ip), (self._open_by_listener, listener)):
            remaining = table.get(key, 0) - 1
            if remaining > 0:
                table[key] = remaining
            else:
                table.pop(key, None)

    def _log_rejection(self, ip: str, listener: str, reason: str) -> None:
        now = self.clock()
        key = (ip, reason)
        last, suppressed = self._log_state.get(key, (None, 0))
        if last is not None and now - last < self.limits.rejection_log_interval:
            self._log_state[key] = (last, suppressed + 1)
            return
        if len(self._log_state) > 10_000:
            self._log_state.clear()
        self._log_state[key] = (now, 0)
        event(
            log,
            "limit",
            level=logging.WARNING,
            ip=ip,
            listener=listener,
            reason=reason,
            suppressed=suppressed,
        )


def _ip_key(ip: str) -> str:
    return f"ip:{ip}"


def _listener_key(listener: str) -> str:
    return f"listener:{listener}"
