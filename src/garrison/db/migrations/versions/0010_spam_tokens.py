"""Add the anti-spam classifier tables: token counts, scopes, trained messages.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "spam_scopes",
        sa.Column("scope", sa.String(), primary_key=True),
        sa.Column("spam", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("ham", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_table(
        "spam_tokens",
        sa.Column("scope", sa.String(), primary_key=True),
        sa.Column("token", sa.Integer(), primary_key=True),
        sa.Column("spam", sa.Integer(), nullable=False),
        sa.Column("ham", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.Integer(), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "spam_trained",
        sa.Column("scope", sa.String(), primary_key=True),
        sa.Column("message", sa.String(), primary_key=True),
        sa.Column("label", sa.String(), nullable=False),
        sa.Column("trained_at", sa.Float(), nullable=False),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("spam_trained")
    op.drop_table("spam_tokens")
    op.drop_table("spam_scopes")
