"""Initial schema: domains, accounts, aliases, mailboxes, blobs, messages.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "domains",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(253), nullable=False, unique=True),
        sa.Column("created_at", sa.Integer, nullable=False),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("domain_id", sa.Integer, sa.ForeignKey("domains.id"), nullable=False),
        sa.Column("address", sa.String(320), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("quota_bytes", sa.Integer, nullable=True),
        sa.Column("used_bytes", sa.Integer, nullable=False, server_default="0"),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default="0"),
        sa.Column("created_at", sa.Integer, nullable=False),
    )
    op.create_table(
        "aliases",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("domain_id", sa.Integer, sa.ForeignKey("domains.id"), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("target", sa.String(320), nullable=False),
        sa.UniqueConstraint("address", "target", name="uq_alias_target"),
    )
    op.create_table(
        "mailboxes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False
        ),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("uidvalidity", sa.Integer, nullable=False),
        sa.Column("uidnext", sa.Integer, nullable=False, server_default="1"),
        sa.Column("highestmodseq", sa.Integer, nullable=False, server_default="1"),
        sa.Column("special_use", sa.String(32), nullable=True),
        sa.UniqueConstraint("account_id", "name", name="uq_mailbox_name"),
    )
    op.create_table(
        "subscriptions",
        sa.Column(
            "account_id", sa.Integer, sa.ForeignKey("accounts.id"), primary_key=True
        ),
        sa.Column("name", sa.Text, primary_key=True),
    )
    op.create_table(
        "blobs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("analysis", sa.Text, nullable=False),
        sa.Column("created_at", sa.Integer, nullable=False),
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "mailbox_id", sa.Integer, sa.ForeignKey("mailboxes.id"), nullable=False
        ),
        sa.Column("uid", sa.Integer, nullable=False),
        sa.Column("modseq", sa.Integer, nullable=False),
        sa.Column("flags", sa.Integer, nullable=False, server_default="0"),
        sa.Column("keywords", sa.Text, nullable=False, server_default=""),
        sa.Column("internaldate", sa.Integer, nullable=False),
        sa.Column("internaldate_tz", sa.Integer, nullable=False, server_default="0"),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("blob_id", sa.String(64), sa.ForeignKey("blobs.id"), nullable=False),
        sa.UniqueConstraint("mailbox_id", "uid", name="uq_message_uid"),
    )
    op.create_index("ix_messages_modseq", "messages", ["mailbox_id", "modseq"])
    op.create_index("ix_messages_blob", "messages", ["blob_id"])
    op.create_table(
        "vanished",
        sa.Column(
            "mailbox_id", sa.Integer, sa.ForeignKey("mailboxes.id"), primary_key=True
        ),
        sa.Column("uid", sa.Integer, primary_key=True),
        sa.Column("modseq", sa.Integer, nullable=False),
    )
    op.create_table(
        "settings",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("value", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "settings",
        "vanished",
        "messages",
        "blobs",
        "subscriptions",
        "mailboxes",
        "aliases",
        "accounts",
        "domains",
    ):
        op.drop_table(table)
