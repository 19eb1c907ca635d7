"""Rebuild the full-text index without token positions (detail=column).

Positions doubled the index and its write cost per message. Substring
matches are now confirmed against the stored text, so positions are not
needed.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE search_text RENAME TO search_text_old")
    op.execute(
        "CREATE VIRTUAL TABLE search_text USING fts5("
        "subject, headers, body, tokenize = 'trigram case_sensitive 0',"
        " detail = column)"
    )
    op.execute(
        "INSERT INTO search_text(rowid, subject, headers, body)"
        " SELECT rowid, subject, headers, body FROM search_text_old"
    )
    op.execute("DROP TABLE search_text_old")


def downgrade() -> None:
    op.execute("ALTER TABLE search_text RENAME TO search_text_new")
    op.execute(
        "CREATE VIRTUAL TABLE search_text USING fts5("
        "subject, headers, body, tokenize = 'trigram case_sensitive 0')"
    )
    op.execute(
        "INSERT INTO search_text(rowid, subject, headers, body)"
        " SELECT rowid, subject, headers, body FROM search_text_new"
    )
    op.execute("DROP TABLE search_text_new")
