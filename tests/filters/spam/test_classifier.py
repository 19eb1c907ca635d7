"""The tokenizer and the Robinson-Fisher classifier, with in-memory counts."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

import pytest

from garrison.config.schema import SpamSettings
from garrison.filters.spam.classifier import chi2q, spam_probability, token_probability
from garrison.filters.spam.content import read_content
from garrison.filters.spam.scoring import Scorer
from garrison.filters.spam.tokenizer import tokenize
from garrison.filters.spam.tokens import SERVER_SCOPE, MemoryTokens
from tests.filters.spam.samples import chinese, english

NOW = datetime.now(UTC)


def train(
    scorer: Scorer, tokens: MemoryTokens, messages: list[tuple[str, bytes]]
) -> None:
    for label, data in messages:
        tokens.learn(SERVER_SCOPE, scorer.analyse(data, NOW).keys, label)


def classify(scorer: Scorer, tokens: MemoryTokens, data: bytes):
    return scorer.bayes(tokens, scorer.analyse(data, NOW), [SERVER_SCOPE])


def test_chi2q_known_values() -> None:
    assert chi2q(0.0, 2) == 1.0
    # With 2 degrees of freedom the tail is exp(-x/2).
    assert chi2q(3.0, 2) == pytest.approx(math.exp(-1.5))
    assert chi2q(1000.0, 4) < 1e-200


def test_token_probability_smoothing() -> None:
    assert token_probability(0, 0, 10, 10) == 0.5
    # One spam sighting moves f(w) only part of the way towards 1.
    assert 0.5 < token_probability(1, 0, 10, 10) < 0.9
    assert token_probability(50, 0, 50, 50) > 0.99
    assert token_probability(0, 50, 50, 50) < 0.01


def test_no_evidence_is_unsure() -> None:
    assert spam_probability([], 10, 10) == 0.5
    assert spam_probability([(1, 1), (3, 3)], 10, 10) == 0.5


def test_training_flips_verdict() -> None:
    scorer = Scorer(SpamSettings(min_trained=5))
    tokens = MemoryTokens()
    probe = english("spam", 42)
    assert classify(scorer, tokens, probe) is None

    train(scorer, tokens, [("spam", english("spam", i)) for i in range(6)])
    train(scorer, tokens, [("ham", english("ham", i)) for i in range(6)])

    spam_result = classify(scorer, tokens, probe)
    assert spam_result is not None
    assert spam_result.probability > 0.9
    assert spam_result.symbols["BAYES_SPAM"] >= SpamSettings().junk_score

    ham_result = classify(scorer, tokens, english("ham", 42))
    assert ham_result is not None
    assert ham_result.probability < 0.1
    assert ham_result.symbols["BAYES_HAM"] < 0


def test_scope_below_minimum_not_used() -> None:
    scorer = Scorer(SpamSettings(min_trained=10))
    tokens = MemoryTokens()
    train(scorer, tokens, [("spam", english("spam", i)) for i in range(20)])
    train(scorer, tokens, [("ham", english("ham", i)) for i in range(9)])
    assert classify(scorer, tokens, english("spam", 99)) is None


def test_chinese_tokens_are_bigrams() -> None:
    content = read_content(chinese("spam", 0, charset="gb2312"))
    tokens = tokenize(content)
    assert "发票" in tokens
    assert "恭喜" in tokens
    assert any(token.startswith("subject:") and "恭" in token for token in tokens)


def test_chinese_classified_after_training() -> None:
    scorer = Scorer(SpamSettings(min_trained=3))
    tokens = MemoryTokens()
    train(scorer, tokens, [("spam", chinese("spam", i, "gb2312")) for i in range(4)])
    train(scorer, tokens, [("ham", chinese("ham", i, "utf-8")) for i in range(4)])

    # The same spam text labelled GBK and sent as UTF-8 still matches,
    # because both decode to the same characters.
    spam_result = classify(scorer, tokens, chinese("spam", 7, "gbk"))
    assert spam_result is not None
    assert spam_result.probability > 0.9
    ham_result = classify(scorer, tokens, chinese("ham", 8, "gb2312"))
    assert ham_result is not None
    assert ham_result.probability < 0.1


def test_token_cap_respected() -> None:
    words = " ".join(f"word{i:05d}" for i in range(5000))
    data = b"Subject: many\r\n\r\n" + words.encode()
    assert len(tokenize(read_content(data), max_tokens=300)) == 300


def test_classification_time_of_10k_message() -> None:
    scorer = Scorer(SpamSettings(min_trained=5))
    tokens = MemoryTokens()
    train(scorer, tokens, [("spam", english("spam", i)) for i in range(10)])
    train(scorer, tokens, [("ham", english("ham", i)) for i in range(10)])
    paragraph = " ".join(f"lorem{i} ipsum dolor sit amet" for i in range(400))
    data = english("ham", 1) + paragraph.encode()[: 10 * 1024]
    started = time.perf_counter()
    for _ in range(20):
        classify(scorer, tokens, data)
    per_message = (time.perf_counter() - started) / 20
    # A loose bound that still catches an accidental quadratic step.
    assert per_message < 0.05
