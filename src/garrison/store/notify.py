"""Change notifications within one process.

The store calls `publish(mailbox_ids)` on the event loop after each commit;
every callback subscribed to one of those mailboxes runs. IMAP sessions use
this to wake IDLE and to learn about expunges by other sessions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

log = logging.getLogger("garrison.store")


class ChangeHub:
    """Maps mailbox ids to the callbacks that watch them."""

    def __init__(self) -> None:
        self._watchers: dict[int, list[Callable[[], None]]] = {}

    def subscribe(self, mailbox_id: int, callback: Callable[[], None]) -> None:
        self._watchers.setdefault(mailbox_id, []).append(callback)

    def unsubscribe(self, mailbox_id: int, callback: Callable[[], None]) -> None:
        callbacks = self._watchers.get(mailbox_id)
        if not callbacks:
            return
        try:
            callbacks.remove(callback)
        except ValueError:
            return
        if not callbacks:
            del self._watchers[mailbox_id]

    def publish(self, mailbox_ids: Iterable[int]) -> None:
        for mailbox_id in mailbox_ids:
            for callback in list(self._watchers.get(mailbox_id, ())):
                try:
                    callback()
                except Exception:
                    log.exception("event=notify_failed mailbox=%s", mailbox_id)
