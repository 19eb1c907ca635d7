"""The scoring shared by the server check, the CLI and the measurement script.

`Scorer.analyse(data, now)` reads a message once (`content.read_content`),
runs the header and structure rules and tokenizes it. This is CPU work
without I/O, so the server runs it in a worker thread. `Scorer.bayes(counts,
analysis, scopes)` classifies the analysed message with the counts of the
scopes that are trained enough. Scores in `spam.scores` replace the
built-in ones by symbol name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from garrison.config.schema import SpamSettings
from garrison.filters.spam.classifier import bayes_symbols, spam_probability, token_hash
from garrison.filters.spam.content import MessageContent, read_content
from garrison.filters.spam.rules import content_symbols
from garrison.filters.spam.tokenizer import tokenize
from garrison.filters.spam.tokens import TokenCounts, combined_counts


@dataclass(frozen=True, slots=True)
class Analysis:
    """One message read for scoring: its rule symbols and token keys."""

    content: MessageContent
    symbols: dict[str, float]
    tokens: list[str]
    keys: list[int]


@dataclass(frozen=True, slots=True)
class BayesResult:
    """The classifier's result for one set of scopes."""

    probability: float
    symbols: dict[str, float]
    scopes: tuple[str, ...]


class Scorer:
    """Rules and classifier with the settings applied."""

    def __init__(self, settings: SpamSettings) -> None:
        self.settings = settings

    def rescore(self, symbols: Mapping[str, float]) -> dict[str, float]:
        """Return `symbols` with the scores of `spam.scores` put in."""
        overrides = self.settings.scores
        return {name: overrides.get(name, score) for name, score in symbols.items()}

    def analyse(self, data: bytes, now: datetime) -> Analysis:
        """Read the first `max_scan_size` bytes of a message; never raises on content.

        A property test feeds it random and mutated messages.
        """
        content = read_content(data[: self.settings.max_scan_size])
        tokens = tokenize(content, self.settings.max_tokens)
        keys = [token_hash(token) for token in tokens]
        symbols = self.rescore(content_symbols(content, now))
        return Analysis(content, symbols, tokens, keys)

    def bayes(
        self, counts: TokenCounts, analysis: Analysis, scopes: Sequence[str]
    ) -> BayesResult | None:
        """Classify with the scopes trained enough; None when none of them is."""
        combined = combined_counts(
            counts, scopes, analysis.keys, self.settings.min_trained
        )
        if combined is None:
            return None
        probability = spam_probability(
            combined.counts.values(), combined.nspam, combined.nham
        )
        symbols = bayes_symbols(probability, self.settings.scores)
        return BayesResult(probability, symbols, combined.scopes)
