"""Fields the delivery pipeline writes for the inbound checks."""

from garrison.delivery.headers import authserv_id, format_field


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
