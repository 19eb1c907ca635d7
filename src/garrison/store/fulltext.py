"""Full-text search index over message blobs: SQLite FTS5 with trigrams.

Each blob is indexed once, shortly after the transaction that stores it
commits, by `garrison.store.indexer.SearchIndexer` in one worker process,
in batches (`index_document`). Until then the blob counts as unindexed and
searches scan it, so results never depend on the indexer's progress. The text
comes from `garrison.message.extract_search_text`, so it is decoded from
its transfer encoding and charset (GB2312, GBK, GB18030, Big5, UTF-8 and
the rest of `garrison.message.charsets`). The trigram tokenizer needs no
word segmentation, so any substring of three or more characters of Chinese
or any other script is found. Shorter strings cannot use the index, so
callers scan instead (`MIN_QUERY_CHARS`).

Tables: `search_docs` maps a stable integer id to the blob id, and the
FTS5 table `search_text` uses that id as its rowid, with the columns
subject, headers and body. A blob without a `search_docs` row (stored
before the index existed) is not indexed, and callers scan it.

Matching is case-insensitive as the trigram tokenizer folds case
(`case_sensitive 0`); it does not apply full Unicode case folding, so
"ß" does not match "ss" through the index.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from garrison.message import MessageAnalysis, extract_search_text

# The trigram tokenizer cannot match a phrase shorter than three characters.
MIN_QUERY_CHARS = 3
# Characters of decoded text indexed per message; the rest is not searchable.
MAX_INDEXED_CHARS = 1_000_000

FIELDS = ("subject", "headers", "body")


@dataclass(frozen=True, slots=True)
class SearchDocument:
    """The indexed text of one blob."""

    subject: str
    headers: str
    body: str


def build_document(data: bytes, analysis: MessageAnalysis) -> SearchDocument:
    """Extract the indexed text of a message; never raises on message content."""
    text = extract_search_text(data, analysis.parts, MAX_INDEXED_CHARS)
    return SearchDocument(analysis.subject, text.headers, text.body)


def index_document(
    conn: sqlite3.Connection, blob_id: str, document: SearchDocument
) -> None:
    """Add a blob's text inside the caller's transaction, unless already indexed."""
    cursor = conn.execute(
        "INSERT OR IGNORE INTO search_docs(blob_id) VALUES (?)", (blob_id,)
    )
    if cursor.rowcount != 1:
        return
    conn.execute(
        "INSERT INTO search_text(rowid, subject, headers, body) VALUES (?, ?, ?, ?)",
        (cursor.lastrowid, document.subject, document.headers, document.body),
    )


def _phrase(needle: str) -> str:
    """Quote `needle` as one FTS5 string, so it matches as a substring."""
    return '"' + needle.replace('"', '""') + '"'


def _trigram_terms(needle: str) -> str:
    """Return an FTS5 AND of trigrams covering `needle` (at most 32 of them).

    With detail=column FTS5 cannot match phrases, so the query requests
    trigrams that together cover the needle. The substring confirmation
    then removes the false candidates.
    """
    starts = list(range(0, len(needle) - 2, 3))
    trigrams = [needle[start : start + 3] for start in starts] + [needle[-3:]]
    unique = list(dict.fromkeys(trigrams))[:32]
    return " AND ".join(_phrase(trigram) for trigram in unique)


class FullTextIndex:
    """Queries over the index through the store's read connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def matching_blobs(
        self, mailbox_id: int, fields: Iterable[str], needle: str
    ) -> set[str]:
        """Return the ids of the mailbox's blobs whose `fields` contain `needle`.

        The index has no token positions (detail=column), so it yields the
        blobs that contain every trigram of `needle`; each candidate is then
        confirmed by a case-folded substring test on its stored text, the
        same test a scan applies. `needle` must have at least
        `MIN_QUERY_CHARS` characters; raises ValueError otherwise or for an
        unknown field.
        """
        columns = list(fields)
        if len(needle) < MIN_QUERY_CHARS:
            raise ValueError(f"search string shorter than {MIN_QUERY_CHARS} characters")
        if not columns or any(column not in FIELDS for column in columns):
            raise ValueError(f"invalid full-text fields {columns!r}")
        query = "{" + " ".join(columns) + "} : (" + _trigram_terms(needle) + ")"
        wanted = needle.casefold()
        rows = self._conn.execute(
            f"SELECT d.blob_id, {', '.join('search_text.' + c for c in columns)}"
            " FROM search_text JOIN search_docs AS d ON d.id = search_text.rowid"
            " WHERE search_text MATCH ? AND d.blob_id IN"
            " (SELECT blob_id FROM messages WHERE mailbox_id = ?)",
            (query, mailbox_id),
        )
        return {
            row[0]
            for row in rows
            if any(wanted in (text or "").casefold() for text in row[1:])
        }

    def unindexed_blobs(self, mailbox_id: int) -> set[str]:
        """Return the ids of the mailbox's blobs that have no index entry."""
        rows = self._conn.execute(
            "SELECT DISTINCT m.blob_id FROM messages AS m"
            " LEFT JOIN search_docs AS d ON d.blob_id = m.blob_id"
            " WHERE m.mailbox_id = ? AND d.id IS NULL",
            (mailbox_id,),
        )
        return {blob_id for (blob_id,) in rows}
