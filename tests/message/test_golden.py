"""ENVELOPE, BODYSTRUCTURE and BODY compared with Dovecot 2.3.19.

samples/expected.json contains Dovecot's FETCH output for every sample (made
by regenerate_golden.py). When dovecot-imapd is installed and the tests run
as root, the differential test also compares a seeded random corpus live.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

from garrison.message import analyse
from tests.message import dovecot
from tests.message.corpus import random_message

SAMPLES = Path(__file__).parent / "samples"
EXPECTED = json.loads((SAMPLES / "expected.json").read_text())


def _expected(name: str, item: str) -> bytes:
    return EXPECTED[name][item].encode("latin-1")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_matches_dovecot(name: str) -> None:
    result = analyse((SAMPLES / name).read_bytes())
    assert result.envelope == _expected(name, "ENVELOPE")
    assert result.bodystructure == _expected(name, "BODYSTRUCTURE")
    assert result.body == _expected(name, "BODY")


def test_every_sample_has_expectation() -> None:
    names = {path.name for path in SAMPLES.glob("*.eml")}
    assert names == set(EXPECTED)


def test_rfc822_sample_envelope_by_hand() -> None:
    """The forwarded message's ENVELOPE, written out from RFC 3501 §7.4.2."""
    result = analyse((SAMPLES / "rfc822.eml").read_bytes())
    inner = (
        b'("Wed, 2 Aug 2023 18:00:00 -0500" "original" '
        b'(("Erin" NIL "erin" "example.test")) (("Erin" NIL "erin" "example.test")) '
        b'(("Erin" NIL "erin" "example.test")) (("Carol" NIL "carol" "example.test")) '
        b'NIL NIL NIL "<orig@example.test>")'
    )
    assert inner in result.bodystructure


@pytest.mark.skipif(
    not dovecot.available() and os.environ.get("CI") != "true",
    reason="needs dovecot-imapd and root (CI installs both)",
)
def test_random_corpus_matches_dovecot() -> None:
    assert dovecot.available(), "install dovecot-imapd (scripts/install-test-deps.sh)"
    rng = random.Random(20240501)
    messages = [random_message(rng) for _ in range(150)]
    reference = dovecot.fetch(messages)
    for index, (message, expected) in enumerate(zip(messages, reference, strict=True)):
        result = analyse(message)
        context = f"message {index}:\n{message.decode()}"
        assert result.envelope == expected[b"ENVELOPE"], context
        assert result.bodystructure == expected[b"BODYSTRUCTURE"], context
        assert result.body == expected[b"BODY"], context
