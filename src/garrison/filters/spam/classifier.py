"""The statistical classifier: Robinson's token probabilities, Fisher combining.

This is the method of SpamBayes and bogofilter (Gary Robinson, "A
Statistical Approach to the Spam Problem", Linux Journal 107, 2003):

- each token's spam probability is the smoothed ratio
  f(w) = (S·X + n·p(w)) / (S + n), where p(w) is the share of spam among
  the training messages that contain w (each class normalised by its
  message count), n the number of those messages, X = 0.5 the assumed
  probability of an unknown token and S = 0.45 its strength;
- tokens with |f(w) − 0.5| < 0.1 carry no evidence and are left out, and
  at most the 150 strongest are kept (the SpamBayes defaults);
- Fisher's method combines them twice, once for spamminess and once for
  hamminess, through the inverse chi-square function, and the indicator
  I = (1 + S − H) / 2 lies in [0, 1]: near 1 spam, near 0 ham, around 0.5
  unsure (or both at once).

`bayes_symbols(probability)` turns I into the BAYES_SPAM or BAYES_HAM
symbol, scaled by how far I is from 0.5.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping

UNKNOWN_STRENGTH = 0.45
UNKNOWN_PROBABILITY = 0.5
MIN_DEVIATION = 0.1
MAX_DISCRIMINATORS = 150

# The probability from which the classifier's opinion counts, and the
# built-in scores at probability 1.0 and 0.0.
SPAM_FROM = 0.7
HAM_BELOW = 0.3
BAYES_SPAM = 8.0
BAYES_HAM = -3.0


def token_hash(token: str) -> int:
    """Return the signed 64-bit key of a token (BLAKE2b, 8 bytes)."""
    digest = hashlib.blake2b(token.encode("utf-8", "surrogatepass"), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


def chi2q(x2: float, degrees: int) -> float:
    """Return P(chi-square with `degrees` (even) degrees of freedom >= x2)."""
    m = x2 / 2.0
    term = math.exp(-m)
    total = term
    for i in range(1, degrees // 2):
        term *= m / i
        total += term
    return min(total, 1.0)


def token_probability(spam: int, ham: int, nspam: int, nham: int) -> float:
    """Return Robinson's smoothed spam probability f(w) of one token."""
    spam_ratio = spam / nspam if nspam else 0.0
    ham_ratio = ham / nham if nham else 0.0
    if spam_ratio + ham_ratio == 0:
        return UNKNOWN_PROBABILITY
    p = spam_ratio / (spam_ratio + ham_ratio)
    n = spam + ham
    return (UNKNOWN_STRENGTH * UNKNOWN_PROBABILITY + n * p) / (UNKNOWN_STRENGTH + n)


def spam_probability(counts: Iterable[tuple[int, int]], nspam: int, nham: int) -> float:
    """Return the Fisher-combined spam indicator of a message in [0, 1].

    `counts` contains the (spam, ham) message counts of each token of the message
    found in the training data; `nspam` and `nham` are the trained message
    counts. Without any token that carries evidence the result is 0.5.
    """
    clues = []
    for spam, ham in counts:
        f = token_probability(spam, ham, nspam, nham)
        if abs(f - 0.5) >= MIN_DEVIATION:
            clues.append(f)
    if not clues:
        return 0.5
    if len(clues) > MAX_DISCRIMINATORS:
        clues.sort(key=lambda f: abs(f - 0.5), reverse=True)
        clues = clues[:MAX_DISCRIMINATORS]
    # f lies strictly inside (0, 1) because S > 0, so both logs are finite.
    log_ham = sum(math.log(f) for f in clues)
    log_spam = sum(math.log(1.0 - f) for f in clues)
    degrees = 2 * len(clues)
    spamminess = 1.0 - chi2q(-2.0 * log_spam, degrees)
    hamminess = 1.0 - chi2q(-2.0 * log_ham, degrees)
    return (1.0 + spamminess - hamminess) / 2.0


def bayes_symbols(
    probability: float, scores: Mapping[str, float] | None = None
) -> dict[str, float]:
    """Return BAYES_SPAM or BAYES_HAM scaled by the probability, or nothing.

    From SPAM_FROM up the score rises linearly to the BAYES_SPAM score at
    1.0, and below HAM_BELOW it falls to the BAYES_HAM score at 0.0.
    `scores` may replace either built-in score.
    """
    scores = scores or {}
    if probability >= SPAM_FROM:
        weight = scores.get("BAYES_SPAM", BAYES_SPAM)
        share = (probability - 0.5) / 0.5
        return {"BAYES_SPAM": round(weight * share, 2)}
    if probability <= HAM_BELOW:
        weight = scores.get("BAYES_HAM", BAYES_HAM)
        share = (0.5 - probability) / 0.5
        return {"BAYES_HAM": round(weight * share, 2)}
    return {}
