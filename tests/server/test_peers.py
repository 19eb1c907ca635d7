import asyncio

from garrison.config import Settings
from garrison.server.peers import PeerNotifier
from garrison.store import MailStore

ALICE_ID = 1


async def test_commit_in_one_worker_wakes_the_other(settings: Settings) -> None:
    from garrison.db.engine import migrate

    migrate(settings.db_path)
    first, second = MailStore(settings), MailStore(settings)
    run_dir = settings.server.data_dir / "run"
    notifiers = [
        PeerNotifier(run_dir, 0, 2, first),
        PeerNotifier(run_dir, 1, 2, second),
    ]
    for notifier in notifiers:
        notifier.start()
    try:
        inbox = second.get_mailbox(ALICE_ID, "INBOX")
        assert inbox is not None
        woken = asyncio.Event()
        second.subscribe(inbox.id, woken.set)
        await first.append(inbox.id, b"Subject: cross\r\n\r\nbody\r\n")
        await asyncio.wait_for(woken.wait(), timeout=1.0)
        assert second.uids(inbox.id) == [1]
    finally:
        for notifier in notifiers:
            notifier.stop()
        first.close()
        second.close()


async def test_malformed_datagram_is_ignored(settings: Settings) -> None:
    import socket

    from garrison.db.engine import migrate

    migrate(settings.db_path)
    store = MailStore(settings)
    notifier = PeerNotifier(settings.server.data_dir / "run", 0, 1, store)
    notifier.start()
    try:
        seen: list[int] = []
        store.subscribe(7, lambda: seen.append(7))
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
            sender.sendto(b"not,numbers", str(notifier.path))
            sender.sendto(b"7", str(notifier.path))
        for _ in range(50):
            if seen:
                break
            await asyncio.sleep(0.02)
        assert seen == [7]
    finally:
        notifier.stop()
        store.close()
