"""Time the sender authentication checks (SPF, DKIM, ARC, DMARC) per message.

Runs the checks of `garrison.filters.authentication` on one DKIM-signed
message, as the delivery pipeline does, against the test DNS server from
tests/queue/dnsserver.py on 127.0.0.1 (SPF, DMARC and DKIM key records).
Prints the median and 95th percentile time of sequential runs, then the
rate with `--concurrency` messages checked at once. The DNS server is
Python in the same process, so its CPU counts in the figures.

    .venv/bin/python bench/sender_auth_bench.py --body-kib 1 --runs 200
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.filters.authzone import (  # noqa: E402
    RSA_KEY,
    SENDER_ZONE,
    dkim_sign,
    message_from,
    publish_key,
)
from tests.queue.dnsserver import DNSServer  # noqa: E402

from garrison.config.schema import (  # noqa: E402
    AuthenticationSettings,
    DNSSettings,
    ServerSettings,
    Settings,
)
from garrison.delivery.pipeline import Envelope, Recipient  # noqa: E402
from garrison.dkim.keys import SigningKey  # noqa: E402
from garrison.filters.authentication import authentication_checks  # noqa: E402
from garrison.filters.verdict import CheckChain, InboundMessage  # noqa: E402
from garrison.store import BlobRef  # noqa: E402


def build_message(body_kib: int) -> InboundMessage:
    key = SigningKey("pass.example", "sel", "rsa", RSA_KEY)
    line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit.\r\n"
    body = line * max(1, body_kib * 1024 // len(line))
    message = dkim_sign(key, message_from("sender@pass.example", "bench", body))
    header = message.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    envelope = Envelope(
        "BENCH",
        "sender@pass.example",
        [Recipient("alice@example.test", [SimpleNamespace(id=1)])],  # type: ignore[list-item]
        helo="client.example",
        client_ip="127.0.0.1",
    )
    return InboundMessage(envelope, BlobRef("bench", len(message), message), header, 0)


async def run(
    chain: CheckChain, message: InboundMessage, args: argparse.Namespace
) -> None:
    for _ in range(5):
        await chain.run(message)
    times = []
    for _ in range(args.runs):
        started = time.perf_counter()
        verdict = await chain.run(message)
        times.append(time.perf_counter() - started)
    times.sort()
    print(f"message: {message.blob.size} bytes")
    print(f"results: {'; '.join(verdict.auth_results)}")
    print(
        f"sequential: median {statistics.median(times) * 1000:.2f} ms, "
        f"p95 {times[int(len(times) * 0.95) - 1] * 1000:.2f} ms over {args.runs} runs"
    )
    started = time.perf_counter()
    await asyncio.gather(*(chain.run(message) for _ in range(args.concurrency)))
    elapsed = time.perf_counter() - started
    print(f"{args.concurrency} at once: {args.concurrency / elapsed:.1f} messages/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--body-kib", type=int, default=1, help="body size in KiB")
    parser.add_argument("--runs", type=int, default=200, help="sequential runs")
    parser.add_argument(
        "--concurrency", type=int, default=100, help="messages checked at once"
    )
    args = parser.parse_args()

    zone = dict(SENDER_ZONE)
    publish_key(zone, SigningKey("pass.example", "sel", "rsa", RSA_KEY))
    dns = DNSServer(zone).start()
    try:
        settings = Settings(
            server=ServerSettings(hostname="mx.bench.test"),
            dns=DNSSettings(nameservers=[dns.address], timeout=3.0),
            authentication=AuthenticationSettings(enabled=True),
        )
        chain = CheckChain(authentication_checks(settings))
        asyncio.run(run(chain, build_message(args.body_kib), args))
    finally:
        dns.stop()


if __name__ == "__main__":
    main()
