import sqlite3
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from garrison.db.engine import connect, migrate
from garrison.db.schema import VIRTUAL_TABLES, metadata


def _declared(name, type_, parent_names) -> bool:
    """Skip the FTS5 tables and their shadow tables, which metadata cannot declare."""
    return not (type_ == "table" and name and name.startswith(VIRTUAL_TABLES))


def test_migrated_database_matches_schema(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    migrate(path)
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_name": _declared}
        )
        differences = compare_metadata(context, metadata)
    engine.dispose()
    assert differences == []


def test_migrate_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    migrate(path)
    migrate(path)
    tables = {
        name
        for (name,) in sqlite3.connect(path).execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
        )
    }
    assert {"domains", "accounts", "mailboxes", "messages", "blobs"} <= tables


def test_connections_use_wal_and_full_sync(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    migrate(path)
    conn = connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    conn.close()
