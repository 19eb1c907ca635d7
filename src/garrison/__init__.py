"""Garrison: a secure mail server suite (SMTP, IMAP, POP3) for many domains."""

__version__ = "0.1.0"
