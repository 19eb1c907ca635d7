"""Property tests: the DMARC and Authentication-Results parsers on any input."""

from __future__ import annotations

import re

import authres
from hypothesis import given, settings
from hypothesis import strategies as st

from garrison.filters.dmarc_record import (
    POLICIES,
    InvalidRecord,
    author_domains,
    parse_record,
)
from garrison.filters.resinfo import comment, pvalue

TAG_TEXT = st.text(alphabet=st.sampled_from("v=DMARC1;p rejctqunoasfkdi%0123 "))


@given(st.one_of(TAG_TEXT, st.text()))
def test_parse_record_raises_only_invalid_record(text: str) -> None:
    try:
        record = parse_record(text)
    except InvalidRecord:
        return
    assert record.policy in POLICIES
    assert record.subdomain_policy in (None, *POLICIES)
    assert record.adkim in ("r", "s")
    assert record.aspf in ("r", "s")
    assert 0 <= record.pct <= 100


FIELD_LINE = st.builds(
    lambda name, value: name + b": " + value + b"\r\n",
    st.sampled_from([b"From", b"from", b"To", b"Subject", b" From"]),
    st.binary(max_size=60).map(lambda raw: raw.replace(b"\r", b"").replace(b"\n", b"")),
)


@given(st.lists(FIELD_LINE, max_size=5))
def test_author_domains_never_raises(lines: list[bytes]) -> None:
    authors = author_domains(b"".join(lines))
    assert authors.fields >= 0
    assert len(set(authors.domains)) == len(authors.domains)
    for domain in authors.domains:
        assert domain == domain.lower()
        assert domain.isascii()


PRINTABLE = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1
)


@settings(max_examples=300)
@given(PRINTABLE, PRINTABLE)
def test_written_values_parse_as_rfc8601(value: str, note: str) -> None:
    field = (
        "Authentication-Results: mx.example; "
        f"spf=pass {comment(note)} smtp.helo={pvalue(value)}"
    )
    parsed = authres.AuthenticationResultsHeader.parse(field)
    [result] = parsed.results
    assert result.method == "spf"
    assert result.result == "pass"
    [prop] = result.properties
    assert prop.name == "helo"
    # authres 1.2 returns a quoted-string's content without undoing its
    # quoted-pairs (RFC 5322 §3.2.4), so the test undoes them.
    assert re.sub(r"\\(.)", r"\1", prop.value) == value
