"""The metadata schema, in SQLAlchemy Core.

This module is the reference for the tables; Alembic migrations under
`migrations/versions` create and change them, and a test checks that a
migrated database matches these definitions. Hot paths query the same
tables through the raw driver.

Flags: the five system flags are bits of `messages.flags` (see
`garrison.store.flags`); keywords are a space-separated `messages.keywords`.
Times are Unix seconds; INTERNALDATE keeps its zone offset in minutes.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

domains = Table(
    "domains",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(253), nullable=False, unique=True),
    Column("created_at", Integer, nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("domain_id", Integer, ForeignKey("domains.id"), nullable=False),
    Column("address", String(320), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("quota_bytes", Integer, nullable=True),
    Column("used_bytes", Integer, nullable=False, server_default="0"),
    Column("disabled", Boolean, nullable=False, server_default="0"),
    Column("created_at", Integer, nullable=False),
)

aliases = Table(
    "aliases",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("domain_id", Integer, ForeignKey("domains.id"), nullable=False),
    Column("address", String(320), nullable=False),
    Column("target", String(320), nullable=False),
    UniqueConstraint("address", "target", name="uq_alias_target"),
)

mailboxes = Table(
    "mailboxes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("name", Text, nullable=False),
    Column("uidvalidity", Integer, nullable=False),
    Column("uidnext", Integer, nullable=False, server_default="1"),
    Column("highestmodseq", Integer, nullable=False, server_default="1"),
    Column("special_use", String(32), nullable=True),
    # RFC 3501 §2.3.2: messages from this UID on are \Recent; the first
    # read-write session to see them claims them by moving it to uidnext.
    Column("recent_uid", Integer, nullable=False, server_default="1"),
    UniqueConstraint("account_id", "name", name="uq_mailbox_name"),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("account_id", Integer, ForeignKey("accounts.id"), primary_key=True),
    Column("name", Text, primary_key=True),
)

blobs = Table(
    "blobs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("size", Integer, nullable=False),
    Column("analysis", Text, nullable=False),
    Column("created_at", Integer, nullable=False),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("mailbox_id", Integer, ForeignKey("mailboxes.id"), nullable=False),
    Column("uid", Integer, nullable=False),
    Column("modseq", Integer, nullable=False),
    Column("flags", Integer, nullable=False, server_default="0"),
    Column("keywords", Text, nullable=False, server_default=""),
    Column("internaldate", Integer, nullable=False),
    Column("internaldate_tz", Integer, nullable=False, server_default="0"),
    Column("size", Integer, nullable=False),
    Column("blob_id", String(64), ForeignKey("blobs.id"), nullable=False),
    UniqueConstraint("mailbox_id", "uid", name="uq_message_uid"),
    Index("ix_messages_modseq", "mailbox_id", "modseq"),
    Index("ix_messages_blob", "blob_id"),
)

vanished = Table(
    "vanished",
    metadata,
    Column("mailbox_id", Integer, ForeignKey("mailboxes.id"), primary_key=True),
    Column("uid", Integer, primary_key=True),
    Column("modseq", Integer, nullable=False),
)

# Full-text search (garrison.store.fulltext): one row per indexed blob. Its
# `id` is the rowid of the blob's row in the FTS5 table `search_text`,
# which SQLAlchemy cannot declare; migration 0004 creates it.
search_docs = Table(
    "search_docs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("blob_id", String(64), ForeignKey("blobs.id"), nullable=False, unique=True),
)

# Virtual tables made by migrations outside this metadata. SQLite adds
# shadow tables named after each (search_text_data and so on), so schema
# comparisons skip every table whose name starts with one of these.
VIRTUAL_TABLES = ("search_text",)

settings_kv = Table(
    "settings",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("value", LargeBinary, nullable=False),
)

# The outbound queue: one row per queued message and one per recipient.
# Times here are Unix seconds as floats, so retry intervals below a second
# work in tests. `lease_owner` and `lease_until` mark the worker delivering
# a message; a lease past `lease_until` is free to take over.
queue_messages = Table(
    "queue_messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("queue_id", String(32), nullable=False, unique=True),
    Column("blob_id", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    Column("sender", String(320), nullable=False),
    Column("envid", Text, nullable=True),
    Column("ret", String(8), nullable=True),
    Column("body", String(16), nullable=True),
    Column("smtputf8", Boolean, nullable=False, server_default="0"),
    Column("created_at", Float, nullable=False),
    Column("next_attempt", Float, nullable=False),
    Column("held", Boolean, nullable=False, server_default="0"),
    Column("warned", Boolean, nullable=False, server_default="0"),
    Column("lease_owner", String(128), nullable=True),
    Column("lease_until", Float, nullable=True),
    Index("ix_queue_messages_due", "next_attempt"),
)

queue_recipients = Table(
    "queue_recipients",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("message_id", Integer, ForeignKey("queue_messages.id"), nullable=False),
    Column("address", String(320), nullable=False),
    Column("orcpt", Text, nullable=True),
    Column("notify", String(64), nullable=True),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt", Float, nullable=False),
    Column("last_code", Integer, nullable=True),
    Column("last_reply", Text, nullable=True),
    Column("remote_host", String(255), nullable=True),
    Column("updated_at", Float, nullable=False),
    Index("ix_queue_recipients_message", "message_id", "status"),
)

# DKIM signing keys (RFC 6376), one per domain: the private key in PKCS#8
# PEM, the selector that names its DNS record, and "rsa" or "ed25519".
dkim_keys = Table(
    "dkim_keys",
    metadata,
    Column("domain", String(253), primary_key=True),
    Column("selector", String(63), nullable=False),
    Column("algorithm", String(16), nullable=False),
    Column("private_key", LargeBinary, nullable=False),
    Column("created_at", Integer, nullable=False),
)

# One row per message an authenticated account submitted, with its
# recipient count, for the hourly sending limits. `account_id` has no
# foreign key so that removing an account does not need these rows first;
# rows older than an hour are deleted as new ones are written.
submission_log = Table(
    "submission_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("recipients", Integer, nullable=False),
    Index("ix_submission_log_account", "account_id", "created_at"),
)

# Client networks banned by an administrator (`garrison ban add`). A single
# address is stored as a /32 or /128 network. `expires_at` is NULL for a ban
# without an end.
bans = Table(
    "bans",
    metadata,
    Column("network", String, primary_key=True),
    Column("reason", Text, nullable=False, server_default=""),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float),
)

# Messages kept out of the mailboxes (`garrison quarantine list`), one row
# per SMTP transaction. `params` is a JSON object of the MAIL FROM
# parameters, and `recipients` is a JSON list of objects with the
# address, its RCPT parameters and the account ids it reached when accepted.
# `blob_id` has no foreign key, because the blob is registered in `blobs`
# only when the message is released to mailboxes.
quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("blob_id", String, nullable=False),
    Column("size", Integer, nullable=False),
    Column("sender", Text, nullable=False),
    Column("params", Text, nullable=False),
    Column("recipients", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("queue_id", String, nullable=False),
    Column("created_at", Float, nullable=False),
)

# Local allow and block lists (`garrison policy add`). `level` is "server",
# "domain" or "user", and `owner` is "" for the server, the domain name or
# the account address. `kind` is "network" (an IPv4 or IPv6 CIDR, a single
# address stored as /32 or /128), "address" (a sender address) or "domain"
# (a sender domain; a leading dot also matches its subdomains).
policy_entries = Table(
    "policy_entries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("level", String, nullable=False),
    Column("owner", String, nullable=False, server_default=""),
    Column("action", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("entry", String, nullable=False),
    Column("note", Text, nullable=False, server_default=""),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("level", "owner", "action", "entry", name="uq_policy_entry"),
)

# Anti-spam classifier (garrison.filters.spam). A scope is "server",
# "domain:<domain>" or "user:<address>". `spam_scopes` counts the messages
# trained per scope and class; `spam_tokens` counts, per scope, the trained
# spam and ham messages that contained each token, keyed by a 64-bit hash of
# the token text; `spam_trained` records which class each message was
# trained as, so a message is counted at most once per scope.
spam_scopes = Table(
    "spam_scopes",
    metadata,
    Column("scope", String, primary_key=True),
    Column("spam", Integer, nullable=False, server_default="0"),
    Column("ham", Integer, nullable=False, server_default="0"),
)

spam_tokens = Table(
    "spam_tokens",
    metadata,
    Column("scope", String, primary_key=True),
    Column("token", Integer, primary_key=True),
    Column("spam", Integer, nullable=False),
    Column("ham", Integer, nullable=False),
    Column("updated_at", Integer, nullable=False),
    sqlite_with_rowid=False,
)

spam_trained = Table(
    "spam_trained",
    metadata,
    Column("scope", String, primary_key=True),
    Column("message", String, primary_key=True),
    Column("label", String, nullable=False),
    Column("trained_at", Float, nullable=False),
    sqlite_with_rowid=False,
)
