import sqlite3
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from garrison.db.engine import connect, migrate
from garrison.db.schema import metadata


def test_migrated_database_matches_schema(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    migrate(path)
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        context = MigrationContext.configure(connection)
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
