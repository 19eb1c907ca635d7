"""Shared fixtures: a provisioned data directory and in-process servers.

`services` opens the store, directory and delivery pipeline on a fresh copy
of a template data directory (domain example.test, users alice and bob).
`garrison_server` also binds every protocol listener on 127.0.0.1 with
ephemeral ports and stops them at teardown.
"""

from __future__ import annotations

import shutil
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from garrison.config import ListenerSettings, Settings, load_settings
from garrison.server.admin import add_user, initialize
from garrison.server.runner import Runner
from garrison.server.services import Services

PASSWORD = "secret-password-1"
DOMAIN = "example.test"
ALICE = f"alice@{DOMAIN}"
BOB = f"bob@{DOMAIN}"

TEST_LISTENERS = [
    ListenerSettings(name="smtp", protocol="smtp", port=0, tls="starttls"),
    ListenerSettings(name="imap", protocol="imap", port=0, tls="starttls"),
    ListenerSettings(name="imaps", protocol="imap", port=0, tls="implicit"),
    ListenerSettings(name="pop3", protocol="pop3", port=0, tls="starttls"),
    ListenerSettings(name="pop3s", protocol="pop3", port=0, tls="implicit"),
]


@pytest.fixture(scope="session")
def template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory set up once per test process, copied by each test."""
    base = tmp_path_factory.mktemp("template") / "var"
    initialize(base, "mail.example.test", DOMAIN)
    settings = load_settings(base / "garrison.toml")
    from garrison.directory import Directory

    directory = Directory(settings.db_path)
    try:
        directory.set_password(ALICE, PASSWORD)
    finally:
        directory.close()
    add_user(settings, BOB, PASSWORD)
    return base


@pytest.fixture
def settings(template_dir: Path, tmp_path: Path) -> Settings:
    """Settings for a private copy of the template data directory."""
    data_dir = tmp_path / "var"
    shutil.copytree(template_dir, data_dir)
    loaded = load_settings(data_dir / "garrison.toml")
    # Tests never use the system resolver or reach a host off loopback: the
    # name server below has nothing listening, and the queue connects only
    # to 127.0.0.0/8. Queue tests point DNS at their own server.
    return loaded.model_copy(
        update={
            "listeners": TEST_LISTENERS,
            "dns": loaded.dns.model_copy(update={"nameservers": ["127.0.0.1:9"]}),
            "queue": loaded.queue.model_copy(
                update={"allowed_networks": ["127.0.0.0/8"]}
            ),
        }
    )


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    opened = Services.open(settings)
    try:
        yield opened
    finally:
        opened.close()


class RunningServer:
    """Handle on an in-process server for tests."""

    def __init__(self, runner: Runner, settings: Settings) -> None:
        self.runner = runner
        self.settings = settings
        assert runner.services is not None
        self.services = runner.services
        self.store = runner.services.store
        self.directory = runner.services.directory
        self.host = "127.0.0.1"

    def port(self, name: str) -> int:
        return self.runner.port(name)

    def tls_client_context(self) -> ssl.SSLContext:
        """A client context that trusts the server's self-signed certificate."""
        context = ssl.create_default_context(cafile=str(self.settings.tls.cert_file))
        context.check_hostname = False
        return context

    @property
    def ca_file(self) -> Path:
        return self.settings.tls.cert_file


@pytest.fixture
async def garrison_server(settings: Settings) -> AsyncIterator[RunningServer]:
    runner = Runner(settings)
    await runner.start()
    try:
        yield RunningServer(runner, settings)
    finally:
        await runner.stop()
