"""Outbound queue: queue_messages and queue_recipients.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queue_messages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("queue_id", sa.String(32), nullable=False, unique=True),
        sa.Column("blob_id", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sender", sa.String(320), nullable=False),
        sa.Column("envid", sa.Text, nullable=True),
        sa.Column("ret", sa.String(8), nullable=True),
        sa.Column("body", sa.String(16), nullable=True),
        sa.Column("smtputf8", sa.Boolean, nullable=False, server_default="0"),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("next_attempt", sa.Float, nullable=False),
        sa.Column("held", sa.Boolean, nullable=False, server_default="0"),
        sa.Column("warned", sa.Boolean, nullable=False, server_default="0"),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        sa.Column("lease_until", sa.Float, nullable=True),
    )
    op.create_index("ix_queue_messages_due", "queue_messages", ["next_attempt"])
    op.create_table(
        "queue_recipients",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "message_id",
            sa.Integer,
            sa.ForeignKey("queue_messages.id"),
            nullable=False,
        ),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("orcpt", sa.Text, nullable=True),
        sa.Column("notify", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt", sa.Float, nullable=False),
        sa.Column("last_code", sa.Integer, nullable=True),
        sa.Column("last_reply", sa.Text, nullable=True),
        sa.Column("remote_host", sa.String(255), nullable=True),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_queue_recipients_message", "queue_recipients", ["message_id", "status"]
    )


def downgrade() -> None:
    op.drop_index("ix_queue_recipients_message", "queue_recipients")
    op.drop_table("queue_recipients")
    op.drop_index("ix_queue_messages_due", "queue_messages")
    op.drop_table("queue_messages")
