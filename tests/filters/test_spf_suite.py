"""The RFC 7208 test suite, run through our SPF evaluation.

data/rfc7208-tests.yml is the openspf.org suite (release 2014.04) as
shipped in pyspf 2.0.14's source distribution, with its licence in
data/rfc7208-tests.LICENSE. Each scenario's zone data is served by a lookup
with the signature of `dnsutil.RecordLookup` and its data formats, the
same hook the SPF check installs into pyspf, in the way pyspf's own
harness (test/testspf.py) serves it:

- `TIMEOUT` as a whole entry, or as a record of the type asked, and any
  unknown name under `error.` raise a temporary error;
- a CNAME record is returned with the records of its target, one level
  deep, as a recursive resolver puts them in one answer;
- SPF (type 99) records are copied into TXT when a name has no TXT.

Where a test lists several results, any of them passes, as in pyspf's
harness. Explanations are compared unless the suite expects pyspf's
default text ("DEFAULT"), which the harness sets and our check does not.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
import spf as pyspf
import yaml

from garrison.filters.spf import evaluate

SUITE = Path(__file__).parent / "data" / "rfc7208-tests.yml"

Zone = dict[str, list[object]]


def _records(name: str, entries: list[object]) -> list[object]:
    """Return a name's entries as (type, value) pairs or the TIMEOUT marker."""
    records: list[object] = []
    spf_copies: list[object] = []
    has_txt = False
    for entry in entries:
        if entry == "TIMEOUT":
            records.append("TIMEOUT")
            continue
        assert isinstance(entry, dict)
        for rtype, value in entry.items():
            if rtype in ("TXT", "SPF") and isinstance(value, str):
                value = (value,)
            if rtype == "TXT":
                has_txt = True
            elif rtype == "SPF":
                spf_copies.append(("TXT", value))
            if value != ("NONE",):
                records.append((rtype, value))
    if not has_txt:
        records.extend(spf_copies)
    return records


def load_suite() -> list[pytest.param]:
    params = []
    with SUITE.open("rb") as stream:
        for scenario in yaml.safe_load_all(stream):
            zone = {
                name.lower(): _records(name, entries)
                for name, entries in scenario["zonedata"].items()
            }
            for test_id, test in scenario["tests"].items():
                params.append(pytest.param(zone, test, id=test_id))
    return params


class ZoneLookup:
    """Serves one scenario's zone data in `RecordLookup`'s formats."""

    def __init__(self, zone: Zone) -> None:
        self.zone = zone

    def __call__(
        self, name: str, qtype: str, timeout: float | None, level: int = 0
    ) -> list[tuple[tuple[str, str], object]]:
        # Labels over 63 octets do not exist in DNS.
        labels = [label for label in name.split(".") if label]
        if any(len(label) > 63 for label in labels):
            raise pyspf.TempError("DNS label too long")
        name = ".".join(labels)
        entries = self.zone.get(name.lower())
        if entries is None:
            if name.lower().startswith("error."):
                raise pyspf.TempError("DNS timeout")
            return []
        answers: list[tuple[tuple[str, str], object]] = []
        found = False
        for entry in entries:
            if entry == "TIMEOUT":
                if not found:
                    raise pyspf.TempError("DNS timeout")
                return answers
            rtype, value = entry  # type: ignore[misc]
            if rtype == qtype:
                found = True
            if value == "TIMEOUT":
                if rtype == qtype:
                    raise pyspf.TempError("DNS timeout")
                continue
            if rtype in ("TXT", "SPF"):
                value = tuple(part.encode("utf-8") for part in value)
            elif rtype == "AAAA":
                value = str(ipaddress.IPv6Address(value))
            elif rtype == "MX":
                value = (value[0], value[1])
            answers.append(((name, rtype), value))
            if level == 0 and rtype == "CNAME":
                answers.extend(self(value, qtype, timeout, 1))
        return answers


@pytest.mark.parametrize(("zone", "test"), load_suite())
def test_rfc7208_suite(zone: Zone, test: dict[str, object]) -> None:
    outcome = evaluate(
        str(test["host"]),
        str(test["mailfrom"]),
        str(test["helo"]),
        ZoneLookup(zone),
        receiver="mail.example.test",
        time_limit=20.0,
    )
    expected = test["result"]
    allowed = expected if isinstance(expected, list) else [expected]
    assert outcome.result in allowed, test.get("description")
    explanation = test.get("explanation")
    if explanation is not None and explanation != "DEFAULT":
        assert outcome.explanation == explanation


def test_suite_has_every_scenario() -> None:
    # The 2014.04 release has 16 scenarios with 203 tests in all.
    assert len(load_suite()) == 203
