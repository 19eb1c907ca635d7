"""Regenerate samples/expected.json from Dovecot's FETCH output.

Run as root with Debian's dovecot-imapd installed:
    .venv/bin/python -m tests.message.regenerate_golden
The expected values come from Dovecot, never from garrison, so the golden
test compares garrison against the reference implementation.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.message import dovecot

SAMPLES = Path(__file__).parent / "samples"


def main() -> None:
    if not dovecot.available():
        sys.exit("dovecot-imapd is not installed or this is not root")
    paths = sorted(SAMPLES.glob("*.eml"))
    results = dovecot.fetch([path.read_bytes() for path in paths])
    expected = {
        path.name: {
            item.decode(): value.decode("latin-1") for item, value in result.items()
        }
        for path, result in zip(paths, results, strict=True)
    }
    text = json.dumps(expected, indent=1, ensure_ascii=True, sort_keys=True)
    (SAMPLES / "expected.json").write_text(text + "\n")
    print(f"wrote {len(expected)} samples")


if __name__ == "__main__":
    main()
