"""Administrative operations that span the directory and the store.

The CLI calls these; the web console will call the same functions, so both
paths create the same mailboxes and apply the same checks.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from pathlib import Path

from garrison.config import Settings
from garrison.config.sample import render_settings
from garrison.config.schema import (
    DEVELOPMENT_PORTS,
    STANDARD_PORTS,
    ListenerSettings,
    ServerSettings,
)
from garrison.db.engine import migrate
from garrison.directory import Account, AddressError, Directory, DirectoryError
from garrison.directory.addresses import normalize_domain
from garrison.net.tls import generate_self_signed
from garrison.store import MailStore


class SetupError(Exception):
    """The data directory cannot be initialised; the message says why."""


def add_user(
    settings: Settings, address: str, password: str, quota_bytes: int | None = None
) -> Account:
    """Create an account and its default mailboxes."""
    migrate(settings.db_path)
    directory = Directory(settings.db_path)
    try:
        account = directory.add_account(address, password, quota_bytes)
    finally:
        directory.close()

    async def provision() -> None:
        store = MailStore(settings)
        try:
            await store.provision(account.id)
        finally:
            store.close()

    asyncio.run(provision())
    return account


@dataclass(frozen=True)
class InitResult:
    config_path: Path
    user: str
    password: str


def initialize(
    data_dir: Path,
    hostname: str,
    domain: str,
    *,
    standard_ports: bool = False,
    listen_address: str = "127.0.0.1",
    user: str = "alice",
) -> InitResult:
    """Create a config, database, certificate, domain and first user in `data_dir`."""
    config_path = data_dir / "garrison.toml"
    for existing in (config_path, data_dir / "garrison.db"):
        if existing.exists():
            raise SetupError(
                f"{existing} already exists; refusing to overwrite an existing setup"
            )
    ports = STANDARD_PORTS if standard_ports else DEVELOPMENT_PORTS
    listeners = [
        ListenerSettings(
            name=name, protocol=protocol, address=listen_address, port=port, tls=tls
        )
        for name, (protocol, port, tls) in ports.items()
    ]
    settings = Settings(
        server=ServerSettings(hostname=hostname, data_dir=Path(".")),
        listeners=listeners,
    )
    try:
        domain = normalize_domain(domain)
    except AddressError as exc:
        raise SetupError(str(exc)) from None

    data_dir.mkdir(parents=True, exist_ok=True)
    config_path.write_text(render_settings(settings), encoding="utf-8")
    resolved = settings.model_copy(
        update={
            "server": settings.server.model_copy(update={"data_dir": data_dir.resolve()}),
            "tls": settings.tls.model_copy(
                update={
                    "cert_file": data_dir.resolve() / settings.tls.cert_file,
                    "key_file": data_dir.resolve() / settings.tls.key_file,
                }
            ),
        }
    )
    generate_self_signed(hostname, resolved.tls.cert_file, resolved.tls.key_file)
    migrate(resolved.db_path)

    directory = Directory(resolved.db_path)
    try:
        directory.add_domain(domain)
    except DirectoryError as exc:
        raise SetupError(str(exc)) from None
    finally:
        directory.close()
    password = secrets.token_urlsafe(12)
    address = f"{user}@{domain}"
    add_user(resolved, address, password)
    directory = Directory(resolved.db_path)
    try:
        directory.add_alias(f"postmaster@{domain}", address)
    finally:
        directory.close()
    return InitResult(config_path, address, password)
