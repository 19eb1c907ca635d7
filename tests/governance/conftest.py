"""The private clamd fixtures of the anti-virus tests, shared with these tests."""

from tests.filters.conftest import clamd, start_clamd

__all__ = ["clamd", "start_clamd"]
