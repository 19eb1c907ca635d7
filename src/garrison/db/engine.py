"""Database connections and migrations.

The embedded default is one SQLite file in WAL mode with `synchronous=FULL`,
so a committed transaction is on disk before the commit returns. Readers and
the single writer use separate connections; WAL lets them run at once.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Open a raw SQLite connection with the pragmas every connection needs."""
    uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
    conn = sqlite3.connect(
        uri, uri=True, isolation_level=None, check_same_thread=False, timeout=30.0
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def migrate(path: Path) -> None:
    """Create or upgrade the database at `path` to the newest schema."""
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{path}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        connection.exec_driver_sql("PRAGMA journal_mode=WAL")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    engine.dispose()
