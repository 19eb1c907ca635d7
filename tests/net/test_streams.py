import asyncio

import uvloop

from garrison.net.streams import buffered_size, discard_buffered


async def test_discard_drops_unread_bytes() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(b"EHLO injected\r\nMAIL FROM:<x>\r\n")
    assert buffered_size(reader) == 30
    assert discard_buffered(reader) == 30
    assert buffered_size(reader) == 0
    reader.feed_data(b"NOOP\r\n")
    assert await reader.readline() == b"NOOP\r\n"


async def read_after_discard() -> bytes:
    reader = asyncio.StreamReader()
    reader.feed_data(b"injected\r\n")
    discard_buffered(reader)
    reader.feed_data(b"NOOP\r\n")
    return await reader.readline()


def test_discard_under_asyncio_and_uvloop() -> None:
    assert asyncio.run(read_after_discard()) == b"NOOP\r\n"
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert runner.run(read_after_discard()) == b"NOOP\r\n"
