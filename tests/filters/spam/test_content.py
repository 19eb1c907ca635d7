"""Reading arbitrary bytes for scoring never raises (property test)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.config.schema import SpamSettings
from garrison.filters.spam.scoring import Scorer
from tests.filters.spam.samples import chinese, english

SCORER = Scorer(SpamSettings())
NOW = datetime.now(UTC)
SEEDS = [
    english("spam", 1),
    chinese("spam", 1),
    b"Content-Type: multipart/mixed\r\n\r\n",
]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000))
def test_random_bytes_analysed(data: bytes) -> None:
    analysis = SCORER.analyse(data, NOW)
    assert len(analysis.keys) == len(analysis.tokens)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(SEEDS),
    st.integers(min_value=0, max_value=400),
    st.binary(min_size=1, max_size=40),
)
def test_mutated_messages_analysed(seed: bytes, offset: int, insert: bytes) -> None:
    data = seed[:offset] + insert + seed[offset:]
    analysis = SCORER.analyse(data, NOW)
    assert len(analysis.tokens) <= SpamSettings().max_tokens
