"""Full-text search: search_docs and the FTS5 trigram table search_text.

Revision ID: 0004
Revises: 0003

Messages stored before this revision are not indexed; IMAP SEARCH scans
them instead of using the index.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_docs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "blob_id",
            sa.String(64),
            sa.ForeignKey("blobs.id"),
            nullable=False,
            unique=True,
        ),
    )
    # SQLAlchemy cannot declare an FTS5 table; the statement is kept verbatim
    # here, as a migration must not change when the code does.
    op.execute(
        "CREATE VIRTUAL TABLE search_text USING fts5("
        "subject, headers, body, tokenize = 'trigram case_sensitive 0')"
    )


def downgrade() -> None:
    op.execute("DROP TABLE search_text")
    op.drop_table("search_docs")
