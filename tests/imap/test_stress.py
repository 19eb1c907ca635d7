"""Several sessions change one mailbox at once; every session must stay consistent.

Four clients with CONDSTORE enabled run a seeded random mix of APPEND,
STORE, EXPUNGE, MOVE, FETCH and NOOP on INBOX while deliveries arrive
through the store. Each client keeps its own sequence number -> UID map,
updated only from the server's EXISTS, EXPUNGE and FETCH responses, and
the test checks:

- every FETCH names the UID that the client's map has at that sequence
  number, so EXPUNGE and EXISTS arrived in a consistent order;
- every message's X-Token header, as fetched, is the token it was stored
  with, so no FETCH returned another message's data;
- the MODSEQ a session sees for a message never decreases;
- at the end each map equals the server's UID list.

The run is bounded: 4 clients x 40 operations, 60 seconds at most.
"""

from __future__ import annotations

import asyncio
import random
import re
from dataclasses import dataclass, field

from tests.imap.conftest import ALICE, Dialogue, deliver

CLIENTS = 4
OPERATIONS = 40
DELIVERIES = 30
TIME_LIMIT = 60.0

_EXISTS = re.compile(rb"^(\d+) EXISTS$")
_EXPUNGE = re.compile(rb"^(\d+) EXPUNGE$")
_FETCH = re.compile(rb"^(\d+) FETCH \(")
_UID = re.compile(rb"UID (\d+)")
_MODSEQ = re.compile(rb"MODSEQ \((\d+)\)")
_TOKEN = re.compile(rb"X-Token: (\S+)")
_APPENDUID = re.compile(rb"APPENDUID \d+ (\d+)")


def _message(token: str) -> bytes:
    return (
        f"From: Bob <bob@example.test>\r\n"
        f"To: Alice <alice@example.test>\r\n"
        f"Subject: stress {token}\r\n"
        f"X-Token: {token}\r\n"
        f"Message-ID: <{token}@example.test>\r\n"
        f"\r\n"
        f"body of {token}\r\n"
    ).encode()


@dataclass
class Tokens:
    """The token each INBOX UID was stored with, and every token a FETCH showed."""

    stored: dict[int, str] = field(default_factory=dict)
    seen: list[tuple[str, int, str]] = field(default_factory=list)


class Client:
    """One session and its view of INBOX, built only from server responses."""

    def __init__(self, name: str, dialogue: Dialogue, tokens: Tokens) -> None:
        self.name = name
        self.dialogue = dialogue
        self.tokens = tokens
        self.uids: list[int | None] = []
        self.modseqs: dict[int, int] = {}
        self.errors: list[str] = []

    def apply(self, untagged: list[bytes]) -> None:
        """Update the map from untagged responses, in the order sent."""
        for line in untagged:
            if match := _EXISTS.match(line):
                count = int(match.group(1))
                if count < len(self.uids):
                    self.errors.append(f"{self.name}: EXISTS {count} shrank the map")
                self.uids.extend([None] * (count - len(self.uids)))
            elif match := _EXPUNGE.match(line):
                seq = int(match.group(1))
                if not 1 <= seq <= len(self.uids):
                    self.errors.append(f"{self.name}: EXPUNGE {seq} out of range")
                    continue
                del self.uids[seq - 1]
            elif match := _FETCH.match(line):
                self._check_fetch(int(match.group(1)), line)

    def _check_fetch(self, seq: int, line: bytes) -> None:
        if not 1 <= seq <= len(self.uids):
            self.errors.append(f"{self.name}: FETCH for unknown sequence number {seq}")
            return
        uid_match = _UID.search(line)
        if uid_match is None:
            return
        uid = int(uid_match.group(1))
        known = self.uids[seq - 1]
        if known is None:
            self.uids[seq - 1] = uid
        elif known != uid:
            self.errors.append(f"{self.name}: FETCH {seq} has UID {uid}, map has {known}")
        if modseq_match := _MODSEQ.search(line):
            modseq = int(modseq_match.group(1))
            if modseq < self.modseqs.get(uid, 0):
                self.errors.append(f"{self.name}: MODSEQ of UID {uid} went down")
            self.modseqs[uid] = modseq
        if token_match := _TOKEN.search(line):
            self.tokens.seen.append((self.name, uid, token_match.group(1).decode()))

    async def run(self, command: str) -> bytes:
        reply = await self.dialogue.command(command, expect=None)
        self.apply(reply.untagged)
        # RFC 5530 §3: a message expunged by another session meanwhile may
        # make a command fail with EXPUNGEISSUED; that is a valid outcome.
        raced = reply.status == "NO" and reply.text.startswith(b"[EXPUNGEISSUED]")
        if reply.status != "OK" and not raced:
            self.errors.append(f"{self.name}: {command!r} -> {reply.status} {reply.text!r}")
        return reply.text


async def _client_ops(client: Client, seed: int) -> None:
    rng = random.Random(seed)
    for step in range(OPERATIONS):
        count = len(client.uids)
        choice = rng.random()
        if choice < 0.2 or count == 0:
            token = f"{client.name}-{step}"
            data = _message(token)
            text = await client.run(f"APPEND INBOX {{{len(data)}+}}\r\n" + data.decode())
            if match := _APPENDUID.search(text):
                client.tokens.stored[int(match.group(1))] = token
        elif choice < 0.4:
            seq = rng.randint(1, count)
            flag = rng.choice(["\\Seen", "\\Flagged", "$Label1"])
            await client.run(f"STORE {seq} +FLAGS ({flag})")
        elif choice < 0.5:
            seq = rng.randint(1, count)
            await client.run(f"STORE {seq} +FLAGS.SILENT (\\Deleted)")
            await client.run("EXPUNGE")
        elif choice < 0.6:
            seq = rng.randint(1, count)
            await client.run(f"MOVE {seq} Archive")
        elif choice < 0.9:
            low = rng.randint(1, count)
            high = rng.randint(low, count)
            await client.run(
                f"FETCH {low}:{high} (UID FLAGS MODSEQ "
                f"BODY.PEEK[HEADER.FIELDS (X-Token)])"
            )
        else:
            await client.run("NOOP")


async def _deliveries(server, tokens: Tokens, seed: int) -> None:
    rng = random.Random(seed)
    for index in range(DELIVERIES):
        token = f"delivery-{index}"
        uid = await deliver(server, ALICE, _message(token))
        tokens.stored[uid] = token
        await asyncio.sleep(rng.random() * 0.02)


async def _final_check(client: Client, server_uids: list[int]) -> None:
    await client.run("NOOP")
    await client.run("FETCH 1:* (UID MODSEQ)")
    if client.uids != server_uids:
        client.errors.append(f"{client.name}: final map {client.uids} != {server_uids}")


async def test_concurrent_sessions_stay_consistent(imap_server):
    tokens = Tokens()
    clients = []
    for index in range(CLIENTS):
        dialogue = await Dialogue.open(imap_server.port("imap"))
        await dialogue.login()
        client = Client(f"c{index}", dialogue, tokens)
        await client.run("ENABLE CONDSTORE")
        await client.run("SELECT INBOX")
        clients.append(client)
    try:
        work = [_client_ops(client, seed) for seed, client in enumerate(clients)]
        work.append(_deliveries(imap_server, tokens, 99))
        await asyncio.wait_for(asyncio.gather(*work), TIME_LIMIT)

        account = imap_server.directory.get_account(ALICE)
        inbox = imap_server.store.get_mailbox(account.id, "INBOX")
        server_uids = imap_server.store.uids(inbox.id)
        for client in clients:
            await _final_check(client, server_uids)
    finally:
        for client in clients:
            await client.dialogue.close()

    errors = [error for client in clients for error in client.errors]
    assert errors == []
    wrong = [
        (name, uid, token)
        for name, uid, token in tokens.seen
        if tokens.stored.get(uid) != token
    ]
    assert wrong == []
    # The run must exercise the interleavings it is meant to check.
    assert len(tokens.seen) > 50
    assert len(server_uids) > 0
