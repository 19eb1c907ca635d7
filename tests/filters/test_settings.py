"""Validation of the [antivirus] settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from garrison.config.schema import AntivirusSettings


@pytest.mark.parametrize(
    "address",
    ["/run/clamav/clamd.ctl", "127.0.0.1:3310", "127.0.0.2:3310", "[::1]:3310"],
)
def test_clamd_address_accepted(address: str) -> None:
    assert AntivirusSettings(clamd=address).clamd == address


@pytest.mark.parametrize(
    "address",
    ["clamd.sock", "192.0.2.1:3310", "localhost:3310", "127.0.0.1", "127.0.0.1:0"],
)
def test_clamd_address_rejected(address: str) -> None:
    with pytest.raises(ValidationError, match="loopback address"):
        AntivirusSettings(clamd=address)


def test_defaults_are_off_and_defer() -> None:
    settings = AntivirusSettings()
    assert settings.enabled is False
    assert settings.on_error == "defer"
    assert settings.on_infected == "reject"


def test_on_infected_accepts_quarantine() -> None:
    settings = AntivirusSettings(on_infected="quarantine")
    assert settings.on_infected == "quarantine"


def test_on_infected_rejects_unknown_action() -> None:
    with pytest.raises(ValidationError):
        AntivirusSettings(on_infected="discard")
