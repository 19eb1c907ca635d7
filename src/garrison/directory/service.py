"""The directory: domains, accounts, aliases and credentials (SQL backend).

Recipient resolution runs on every RCPT, so it is a few indexed reads on the
caller's thread. Passwords are hashed with argon2id; verification runs in a
worker thread. A successful verification is remembered for a short time as
an HMAC of the password under a per-process random key, so a client that
logs in many times a minute costs one argon2 run, not one per login; the
entry is dropped when the stored hash changes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from garrison.db.engine import connect
from garrison.directory.addresses import (
    AddressError,
    normalize_address,
    normalize_domain,
    split_address,
)
from garrison.directory.srs import SRS

MAX_ALIAS_DEPTH = 8
# `user+tag@domain` reaches `user@domain` when no address matches exactly.
SUBADDRESS_SEPARATOR = "+"
AUTH_CACHE_SECONDS = 300.0
# Recipient lookups are remembered this long. Changes made through this
# Directory object clear the cache at once; changes made by another process
# (the CLI while the server runs) take effect within this time.
RESOLVE_CACHE_SECONDS = 2.0
_RESOLVE_CACHE_SIZE = 10000


class DirectoryError(Exception):
    """A directory change was rejected; the message names the value and the fix."""


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    address: str
    domain: str
    quota_bytes: int | None


@dataclass(frozen=True, slots=True)
class Resolution:
    """The outcome of looking up a recipient address.

    A "local" recipient has accounts to store into, addresses outside the
    local domains to forward to (alias targets, or the original sender of
    an SRS0 address), or both.
    """

    kind: Literal["local", "unknown_user", "not_local"]
    accounts: list[Account]
    forwards: tuple[str, ...] = ()


_ACCOUNT_COLUMNS = "a.id, a.address, d.name, a.quota_bytes"


class Directory:
    """Domains, accounts and aliases stored in the metadata database."""

    def __init__(self, db_path: Path) -> None:
        self._conn = connect(db_path)
        self._hasher = PasswordHasher()
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))
        self._cache_key = secrets.token_bytes(32)
        self._verified: dict[str, tuple[bytes, str, float]] = {}
        self._resolved: dict[str, tuple[Resolution, float]] = {}
        self._srs: SRS | None = None

    @property
    def srs(self) -> SRS:
        """The SRS0 rewriter, with the secret stored in the database."""
        if self._srs is None:
            with self._conn:
                self._srs = SRS.from_database(self._conn)
        return self._srs

    def close(self) -> None:
        self._conn.close()

    # -- lookups ------------------------------------------------------------

    def _domain_id(self, domain: str) -> int | None:
        row = self._conn.execute(
            "SELECT id FROM domains WHERE name = ?", (domain,)
        ).fetchone()
        return row[0] if row else None

    def _account(self, address: str) -> Account | None:
        row = self._conn.execute(
            f"SELECT {_ACCOUNT_COLUMNS} FROM accounts a JOIN domains d"
            " ON d.id = a.domain_id WHERE a.address = ? AND a.disabled = 0",
            (address,),
        ).fetchone()
        return Account(*row) if row else None

    def get_account(self, address: str) -> Account | None:
        """Return the account for an address, or None."""
        try:
            return self._account(normalize_address(address))
        except AddressError:
            return None

    def account_by_id(self, account_id: int) -> Account | None:
        row = self._conn.execute(
            f"SELECT {_ACCOUNT_COLUMNS} FROM accounts a JOIN domains d"
            " ON d.id = a.domain_id WHERE a.id = ?",
            (account_id,),
        ).fetchone()
        return Account(*row) if row else None

    def is_local_domain(self, domain: str) -> bool:
        try:
            return self._domain_id(normalize_domain(domain)) is not None
        except AddressError:
            return False

    def _expand(
        self,
        address: str,
        depth: int,
        seen: set[str],
        forwards: list[str] | None = None,
    ) -> list[Account]:
        """Return the accounts an address reaches through aliases and groups.

        Targets outside the local domains are appended to `forwards`.
        """
        if address in seen or depth > MAX_ALIAS_DEPTH:
            return []
        seen.add(address)
        account = self._account(address)
        if account is not None:
            return [account]
        targets = self._conn.execute(
            "SELECT target FROM aliases WHERE address = ? ORDER BY id", (address,)
        ).fetchall()
        found: list[Account] = []
        for (target,) in targets:
            if forwards is not None and not self._is_local_address(target):
                if target not in forwards:
                    forwards.append(target)
                continue
            for account in self._expand(target, depth + 1, seen, forwards):
                if account not in found:
                    found.append(account)
        return found

    def _is_local_address(self, address: str) -> bool:
        return self._domain_id(address.rpartition("@")[2]) is not None

    def resolve_recipient(self, address: str) -> Resolution:
        """Classify a recipient as local (with its accounts), unknown or not ours."""
        now = time.monotonic()
        cached = self._resolved.get(address)
        if cached is not None and cached[1] > now:
            return cached[0]
        resolution = self._resolve(address)
        if len(self._resolved) >= _RESOLVE_CACHE_SIZE:
            self._resolved.clear()
        self._resolved[address] = (resolution, now + RESOLVE_CACHE_SECONDS)
        return resolution

    def _resolve(self, address: str) -> Resolution:
        try:
            local, domain = split_address(address)
        except AddressError:
            if address.strip("<>").lower() == "postmaster":
                return self._resolve_bare_postmaster()
            # A local part we cannot store (a quoted string, say) in one of
            # our domains is an unknown user there, not a relay attempt.
            _, at, domain_part = address.strip("<>").rpartition("@")
            if at and self.is_local_domain(domain_part):
                return Resolution("unknown_user", [])
            return Resolution("not_local", [])
        if self._domain_id(domain) is None:
            return Resolution("not_local", [])

        original = self.srs.reverse(local)
        if original is not None:
            # A bounce to an address that forwarding rewrote goes back to
            # the original sender.
            return Resolution("local", [], (original,))

        # Exact address first, then the address without its +tag, then
        # the domain's catch-all alias "@domain".
        candidates = [f"{local}@{domain}"]
        base, separator, _tag = local.partition(SUBADDRESS_SEPARATOR)
        if separator and base:
            candidates.append(f"{base}@{domain}")
        candidates.append(f"@{domain}")
        for candidate in candidates:
            forwards: list[str] = []
            accounts = self._expand(candidate, 0, set(), forwards)
            if accounts or forwards:
                return Resolution("local", accounts, tuple(forwards))
        return Resolution("unknown_user", [])

    def _resolve_bare_postmaster(self) -> Resolution:
        # RFC 5321 §4.1.1.3: "postmaster" without a domain must be accepted.
        row = self._conn.execute("SELECT name FROM domains ORDER BY id").fetchone()
        if row is None:
            return Resolution("unknown_user", [])
        accounts = self._expand(f"postmaster@{row[0]}", 0, set())
        return Resolution("local" if accounts else "unknown_user", accounts)

    # -- authentication -----------------------------------------------------

    def _fingerprint(self, password: str) -> bytes:
        return hmac.new(self._cache_key, password.encode("utf-8"), hashlib.sha256).digest()

    async def authenticate(self, username: str, password: str) -> Account | None:
        """Return the account if the password is right, else None.

        Unknown users cost the same argon2 run as known ones, so timing does
        not reveal which addresses exist.
        """
        try:
            address = normalize_address(username)
        except AddressError:
            address = ""
        row = None
        if address:
            row = self._conn.execute(
                f"SELECT {_ACCOUNT_COLUMNS}, a.password_hash FROM accounts a"
                " JOIN domains d ON d.id = a.domain_id"
                " WHERE a.address = ? AND a.disabled = 0",
                (address,),
            ).fetchone()
        stored_hash = row[4] if row else self._dummy_hash
        fingerprint = self._fingerprint(password)

        cached = self._verified.get(address)
        now = time.monotonic()
        if (
            row is not None
            and cached is not None
            and cached[1] == stored_hash
            and cached[2] > now
            and hmac.compare_digest(cached[0], fingerprint)
        ):
            return Account(*row[:4])

        loop = asyncio.get_running_loop()
        ok = await loop.run_in_executor(None, self._verify, stored_hash, password)
        if not ok or row is None:
            return None
        self._verified[address] = (fingerprint, stored_hash, now + AUTH_CACHE_SECONDS)
        return Account(*row[:4])

    def _verify(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def hash_password(self, password: str) -> str:
        """Return the argon2id hash of a password."""
        if len(password) < 8:
            raise DirectoryError("password is too short: use at least 8 characters")
        return self._hasher.hash(password)

    # -- administration -----------------------------------------------------

    def _write(self, sql: str, params: tuple) -> sqlite3.Cursor:
        self._resolved.clear()
        with self._conn:
            return self._conn.execute(sql, params)

    def add_domain(self, name: str) -> str:
        """Add a local domain; return its stored name."""
        domain = self._domain_name(name)
        if self._domain_id(domain) is not None:
            raise DirectoryError(f"domain {domain} already exists")
        self._resolved.clear()
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.execute(
                "INSERT INTO domains(name, created_at) VALUES (?, ?)",
                (domain, int(time.time())),
            )
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        return domain

    @staticmethod
    def _domain_name(name: str) -> str:
        try:
            return normalize_domain(name)
        except AddressError as exc:
            raise DirectoryError(str(exc)) from None

    @staticmethod
    def _address(address: str) -> tuple[str, str]:
        try:
            local, domain = split_address(address)
        except AddressError as exc:
            raise DirectoryError(str(exc)) from None
        return f"{local}@{domain}", domain

    def list_domains(self) -> list[str]:
        return [name for (name,) in self._conn.execute("SELECT name FROM domains ORDER BY name")]

    def remove_domain(self, name: str) -> None:
        """Remove a domain that has no accounts and no aliases left."""
        domain = self._domain_name(name)
        domain_id = self._domain_id(domain)
        if domain_id is None:
            raise DirectoryError(f"domain {domain} not found; see 'garrison domain list'")
        count = self._conn.execute(
            "SELECT (SELECT COUNT(*) FROM accounts WHERE domain_id = ?) +"
            " (SELECT COUNT(*) FROM aliases WHERE domain_id = ?)",
            (domain_id, domain_id),
        ).fetchone()[0]
        if count:
            raise DirectoryError(
                f"domain {domain} still has {count} accounts or aliases; remove them first"
            )
        self._write("DELETE FROM domains WHERE id = ?", (domain_id,))

    def _require_domain(self, domain: str) -> int:
        domain_id = self._domain_id(domain)
        if domain_id is None:
            raise DirectoryError(
                f"domain {domain} not found; add it with 'garrison domain add {domain}'"
            )
        return domain_id

    def add_account(
        self, address: str, password: str, quota_bytes: int | None = None
    ) -> Account:
        """Create an account. Its mailboxes are created by the store."""
        stored, domain = self._address(address)
        domain_id = self._require_domain(domain)
        if self._account(stored) is not None:
            raise DirectoryError(f"user {stored} already exists")
        if self._conn.execute(
            "SELECT 1 FROM aliases WHERE address = ?", (stored,)
        ).fetchone():
            raise DirectoryError(f"{stored} is already an alias; remove the alias first")
        password_hash = self.hash_password(password)
        cursor = self._write(
            "INSERT INTO accounts(domain_id, address, password_hash, quota_bytes,"
            " created_at) VALUES (?, ?, ?, ?, ?)",
            (domain_id, stored, password_hash, quota_bytes, int(time.time())),
        )
        return Account(int(cursor.lastrowid), stored, domain, quota_bytes)

    def list_accounts(self, domain: str | None = None) -> list[Account]:
        sql = f"SELECT {_ACCOUNT_COLUMNS} FROM accounts a JOIN domains d ON d.id = a.domain_id"
        params: tuple = ()
        if domain is not None:
            sql += " WHERE d.name = ?"
            params = (self._domain_name(domain),)
        return [Account(*row) for row in self._conn.execute(sql + " ORDER BY a.address", params)]

    def _existing_account(self, address: str) -> Account:
        stored, _ = self._address(address)
        account = self._account(stored)
        if account is None:
            raise DirectoryError(f"user {stored} not found; see 'garrison user list'")
        return account

    def set_password(self, address: str, password: str) -> None:
        account = self._existing_account(address)
        password_hash = self.hash_password(password)
        self._write(
            "UPDATE accounts SET password_hash = ? WHERE id = ?", (password_hash, account.id)
        )
        self._verified.pop(account.address, None)

    def set_quota(self, address: str, quota_bytes: int | None) -> Account:
        """Set an account's storage quota in bytes; None removes the limit."""
        if quota_bytes is not None and quota_bytes < 0:
            raise DirectoryError(f"invalid quota {quota_bytes}; use 0 or more bytes, or none")
        account = self._existing_account(address)
        self._write(
            "UPDATE accounts SET quota_bytes = ? WHERE id = ?", (quota_bytes, account.id)
        )
        self._resolved.clear()
        return Account(account.id, account.address, account.domain, quota_bytes)

    def remove_account(self, address: str) -> list[str]:
        """Delete an account with its mailboxes, messages and the aliases to it.

        Returns the addresses of the aliases removed with it. The message
        files are removed later by the blob collector (`garrison.store.gc`).
        """
        account = self._existing_account(address)
        self._resolved.clear()
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            boxes = "SELECT id FROM mailboxes WHERE account_id = ?"
            self._conn.execute(f"DELETE FROM messages WHERE mailbox_id IN ({boxes})", (account.id,))
            self._conn.execute(f"DELETE FROM vanished WHERE mailbox_id IN ({boxes})", (account.id,))
            self._conn.execute("DELETE FROM mailboxes WHERE account_id = ?", (account.id,))
            self._conn.execute("DELETE FROM subscriptions WHERE account_id = ?", (account.id,))
            aliases = [
                alias
                for (alias,) in self._conn.execute(
                    "SELECT address FROM aliases WHERE target = ? ORDER BY address",
                    (account.address,),
                )
            ]
            self._conn.execute("DELETE FROM aliases WHERE target = ?", (account.address,))
            self._conn.execute("DELETE FROM accounts WHERE id = ?", (account.id,))
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._verified.pop(account.address, None)
        return aliases

    def add_alias(self, address: str, target: str) -> None:
        """Make mail for `address` go to `target`.

        The target is an account, another alias or an address in another
        domain (forwarded through the queue with SRS). Several targets for
        one address make a distribution group. `@domain` as the address is
        the domain's catch-all, used when no account or alias matches.
        """
        if address.startswith("@"):
            domain = self._domain_name(address[1:])
            stored = f"@{domain}"
        else:
            stored, domain = self._address(address)
        domain_id = self._require_domain(domain)
        target_stored, _ = self._address(target)
        if self._account(stored) is not None:
            raise DirectoryError(f"{stored} is an account; an alias needs a free address")
        if stored == target_stored:
            raise DirectoryError(f"alias {stored} cannot point to itself")
        try:
            self._write(
                "INSERT INTO aliases(domain_id, address, target) VALUES (?, ?, ?)",
                (domain_id, stored, target_stored),
            )
        except sqlite3.IntegrityError:
            raise DirectoryError(f"alias {stored} -> {target_stored} already exists") from None

    def list_aliases(self, domain: str | None = None) -> list[tuple[str, str]]:
        sql = "SELECT a.address, a.target FROM aliases a JOIN domains d ON d.id = a.domain_id"
        params: tuple = ()
        if domain is not None:
            sql += " WHERE d.name = ?"
            params = (self._domain_name(domain),)
        return list(self._conn.execute(sql + " ORDER BY a.address, a.target", params))

    def remove_alias(self, address: str, target: str | None = None) -> None:
        if address.startswith("@"):
            stored = f"@{self._domain_name(address[1:])}"
        else:
            stored, _ = self._address(address)
        if target is None:
            cursor = self._write("DELETE FROM aliases WHERE address = ?", (stored,))
        else:
            target_stored, _ = self._address(target)
            cursor = self._write(
                "DELETE FROM aliases WHERE address = ? AND target = ?", (stored, target_stored)
            )
        if cursor.rowcount == 0 and target is not None:
            raise DirectoryError(
                f"alias {stored} -> {target_stored} not found; see 'garrison alias list'"
            )
        if cursor.rowcount == 0:
            raise DirectoryError(f"alias {stored} not found; see 'garrison alias list'")
