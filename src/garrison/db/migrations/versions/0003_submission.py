"""Submission: DKIM signing keys and the per-account sending log.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dkim_keys",
        sa.Column("domain", sa.String(253), primary_key=True),
        sa.Column("selector", sa.String(63), nullable=False),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("private_key", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.Integer, nullable=False),
    )
    op.create_table(
        "submission_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("recipients", sa.Integer, nullable=False),
    )
    op.create_index(
        "ix_submission_log_account", "submission_log", ["account_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_submission_log_account", "submission_log")
    op.drop_table("submission_log")
    op.drop_table("dkim_keys")
