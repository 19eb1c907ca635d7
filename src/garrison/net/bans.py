"""Client networks banned by an administrator, stored in the `bans` table.

`BanList` is the administration interface used by `garrison ban`.
`BanCache` is the read side used by the connection limiter: it reloads the
table at most every `refresh_interval` seconds, so a ban added in one
process reaches every worker within that interval and survives restarts.
"""

from __future__ import annotations

import ipaddress
import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from garrison.db.engine import connect
from garrison.observability.log import event

log = logging.getLogger("garrison.limits")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class BanError(ValueError):
    """A ban request was invalid or named a ban that does not exist."""


@dataclass(frozen=True)
class Ban:
    network: str
    reason: str
    created_at: float
    expires_at: float | None


def parse_network(text: str) -> Network:
    """Parse an IP address or CIDR network; raise BanError when invalid."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise BanError(
            f"invalid address or network {text!r}; expected e.g. 192.0.2.7 "
            "or 2001:db8::/48"
        ) from None


class BanList:
    """Add, remove and list the stored bans."""

    def __init__(self, db_path: Path) -> None:
        self._conn = connect(db_path)

    def close(self) -> None:
        self._conn.close()

    def add(self, network: str, reason: str = "", duration: float | None = None) -> Ban:
        """Store a ban, replacing any ban of the same network; return it."""
        parsed = str(parse_network(network))
        now = time.time()
        expires_at = now + duration if duration is not None else None
        with self._conn:
            self._conn.execute(
                "INSERT OR REPLACE INTO bans (network, reason, created_at, expires_at)"
                " VALUES (?, ?, ?, ?)",
                (parsed, reason, now, expires_at),
            )
        return Ban(parsed, reason, now, expires_at)

    def remove(self, network: str) -> None:
        """Delete the ban of `network`; raise BanError when there is none."""
        parsed = str(parse_network(network))
        with self._conn:
            cursor = self._conn.execute("DELETE FROM bans WHERE network = ?", (parsed,))
        if cursor.rowcount == 0:
            raise BanError(f"no ban for {parsed}; 'garrison ban list' shows the bans")

    def list(self, now: float | None = None) -> list[Ban]:
        """Return the bans in force at `now` (default: the current time)."""
        now = time.time() if now is None else now
        rows = self._conn.execute(
            "SELECT network, reason, created_at, expires_at FROM bans"
            " WHERE expires_at IS NULL OR expires_at > ? ORDER BY network",
            (now,),
        ).fetchall()
        return [Ban(*row) for row in rows]


class BanCache:
    """The stored bans in memory, reloaded at most every `refresh_interval` s."""

    def __init__(self, db_path: Path, refresh_interval: float) -> None:
        self.db_path = db_path
        self.refresh_interval = refresh_interval
        self._networks: list[tuple[Network, float | None]] = []
        self._loaded_at: float | None = None

    @property
    def loaded_at(self) -> float | None:
        """The time.time() of the last reload, or None before the first."""
        return self._loaded_at

    def is_banned(self, ip: str, now: float) -> bool:
        """Return whether a stored ban in force at `now` covers `ip`."""
        try:
            address = ipaddress.ip_address(ip.split("%")[0])
        except ValueError:
            return False
        if self._loaded_at is None or now - self._loaded_at >= self.refresh_interval:
            self._reload(now)
        return any(
            address in network and (expires_at is None or expires_at > now)
            for network, expires_at in self._networks
            if network.version == address.version
        )

    def _reload(self, now: float) -> None:
        try:
            conn = connect(self.db_path, readonly=True)
            try:
                rows = conn.execute("SELECT network, expires_at FROM bans").fetchall()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            # Keep the bans loaded before; a missing table means the database
            # predates the migration that adds it.
            event(log, "ban_reload_failed", level=logging.ERROR, error=str(exc))
            self._loaded_at = now
            return
        networks = []
        for network, expires_at in rows:
            try:
                networks.append((ipaddress.ip_network(network), expires_at))
            except ValueError:
                event(log, "ban_invalid", level=logging.WARNING, network=network)
        self._networks = networks
        self._loaded_at = now
