"""Configuration: the typed schema, TOML loading and sample generation."""

from garrison.config.loader import ConfigError, find_config, load_settings
from garrison.config.schema import (
    IMAPSettings,
    ListenerSettings,
    POP3Settings,
    Settings,
    SMTPSettings,
    TLSSettings,
)

__all__ = [
    "ConfigError",
    "IMAPSettings",
    "ListenerSettings",
    "POP3Settings",
    "SMTPSettings",
    "Settings",
    "TLSSettings",
    "find_config",
    "load_settings",
]
