"""Fields the delivery pipeline writes for the inbound checks."""

from garrison.delivery.headers import (
    VERDICT_FIELDS,
    authserv_id,
    format_field,
    strip_field,
)


def test_field_folded_at_each_part() -> None:
    field = format_field("Authentication-Results", "mx.example; spf=pass; dkim=none")
    assert field == (
        b"Authentication-Results: mx.example;\r\n\tspf=pass;\r\n\tdkim=none\r\n"
    )


def test_line_breaks_in_value_cannot_add_fields() -> None:
    field = format_field("X-Spam-Status", "No\r\nBcc: victim@example.org\nX: \x00y")
    assert field.count(b"\r\n") == 1
    assert field.endswith(b"\r\n")
    assert b"\n" not in field[:-2]
    assert b"\x00" not in field


def test_authserv_id_skips_comments() -> None:
    assert authserv_id(b"Authentication-Results: (c) MX.Example; spf=pass\r\n") == "mx.example"
    assert authserv_id(b"Authentication-Results:\r\n\tmx.example 1; none\r\n") == "mx.example"


def test_authserv_id_quoted_or_after_nested_comments() -> None:
    assert authserv_id(b'Authentication-Results: "MX.example"; spf=pass\r\n') == "mx.example"
    assert authserv_id(b"Authentication-Results: (a(b)c) mx.example; dkim=pass\r\n") == "mx.example"
    assert authserv_id(b"Authentication-Results: (a\\) b) mx.example; none\r\n") == "mx.example"
    assert authserv_id(b'Authentication-Results: "mx\\.example"; none\r\n') == "mx.example"


def claims_ours(field: bytes) -> bool:
    return strip_field(b"authentication-results", field, set(), "mx.example")


def test_forged_results_variants_removed() -> None:
    assert claims_ours(b"Authentication-Results: mx.example.; spf=pass\r\n")
    assert claims_ours(b"Authentication-Results: (((unbalanced mx.example; dkim=pass\r\n")
    assert claims_ours(b'Authentication-Results: "mx.example; dmarc=pass\r\n')
    assert not claims_ours(b"Authentication-Results: other.example; spf=pass\r\n")
    assert not claims_ours(
        b"Authentication-Results: other.example (relayed by mx.example); spf=pass\r\n"
    )


def test_rspamd_fields_are_verdict_fields() -> None:
    for name in (b"x-spamd-bar", b"x-rspamd-score", b"x-rspamd-server"):
        assert strip_field(name, name + b": +++\r\n", set(VERDICT_FIELDS), "mx.example")


def test_undecodable_value_still_written() -> None:
    assert format_field("X-Test", "a\udcffb") == b"X-Test: a?b\r\n"
