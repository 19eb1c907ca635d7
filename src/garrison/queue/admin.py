"""Queue administration for `garrison queue list|show|retry|hold|release|delete`.

The CLI runs in its own process while the server runs, so these functions
work on a database connection of their own, each change in one
`BEGIN IMMEDIATE` transaction. A running scheduler sees a change at its
next scan (`queue.poll_interval`). A message under delivery is not
interrupted: hold and delete take effect for the next attempt, and a
delete that races a delivery may still see that delivery finish.
"""

from __future__ import annotations

import time
from pathlib import Path

from garrison.db.engine import connect
from garrison.queue.records import QUEUED, QueuedMessage, find_message, list_messages


class QueueAdminError(Exception):
    """A queue command failed; the message names the queue id and the fix."""


class QueueAdmin:
    """Read and change queue rows from an administrative process."""

    def __init__(self, db_path: Path) -> None:
        self._conn = connect(db_path)

    def close(self) -> None:
        self._conn.close()

    def list(self) -> list[QueuedMessage]:
        """Return every queued message, oldest first."""
        return list_messages(self._conn)

    def show(self, queue_id: str) -> QueuedMessage:
        """Return one message; raise QueueAdminError if it is not queued."""
        message = find_message(self._conn, queue_id)
        if message is None:
            raise QueueAdminError(
                f"queue id {queue_id} not found; see 'garrison queue list'"
            )
        return message

    def _change(self, queue_id: str, statements: list[tuple[str, tuple]]) -> None:
        message = self.show(queue_id)
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sql, params in statements:
                conn.execute(sql, (*params, message.id))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def retry(self, queue_id: str) -> None:
        """Make every queued recipient of the message due now."""
        now = time.time()
        self._change(
            queue_id,
            [
                (
                    "UPDATE queue_recipients SET next_attempt = ?"
                    " WHERE status = ? AND message_id = ?",
                    (now, QUEUED),
                ),
                ("UPDATE queue_messages SET next_attempt = ? WHERE id = ?", (now,)),
            ],
        )

    def hold(self, queue_id: str) -> None:
        """Keep the message in the queue without delivery attempts."""
        self._change(
            queue_id, [("UPDATE queue_messages SET held = 1 WHERE id = ?", ())]
        )

    def release(self, queue_id: str) -> None:
        """End a hold; the message is due at once."""
        self._change(
            queue_id, [("UPDATE queue_messages SET held = 0 WHERE id = ?", ())]
        )
        self.retry(queue_id)

    def delete(self, queue_id: str) -> None:
        """Remove the message from the queue without a DSN."""
        self._change(
            queue_id,
            [
                ("DELETE FROM queue_recipients WHERE message_id = ?", ()),
                ("DELETE FROM queue_messages WHERE id = ?", ()),
            ],
        )


def describe_time(when: float | None) -> str:
    """Return a Unix time as local ISO 8601 seconds, or "-"."""
    if when is None:
        return "-"
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(when))


__all__ = ["QueueAdmin", "QueueAdminError", "describe_time"]
