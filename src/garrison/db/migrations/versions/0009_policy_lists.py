"""Add the policy list table: allowed and blocked clients and senders.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "policy_entries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("level", sa.String(), nullable=False),
        sa.Column("owner", sa.String(), nullable=False, server_default=""),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("entry", sa.String(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False, server_default=""),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.UniqueConstraint(
            "level", "owner", "action", "entry", name="uq_policy_entry"
        ),
    )


def downgrade() -> None:
    op.drop_table("policy_entries")
