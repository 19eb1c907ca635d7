"""Each header, structure and authentication rule fires on its case only."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from garrison.filters.spam.content import read_content
from garrison.filters.spam.rules import auth_symbols, content_symbols

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
DATE = format_datetime(NOW)
CLEAN_HEADER = {
    "From": "Alice Example <alice@example.org>",
    "To": "bob@example.test",
    "Subject": "Lunch on Friday",
    "Date": DATE,
    "Message-ID": "<abc@example.org>",
    "MIME-Version": "1.0",
}


def build(
    header: dict[str, str | None] | None = None,
    body: bytes = b"See you there.\r\n",
    content_type: str = "text/plain; charset=utf-8",
) -> bytes:
    fields = dict(CLEAN_HEADER)
    fields["Content-Type"] = content_type
    fields.update(header or {})
    lines = [f"{name}: {value}" for name, value in fields.items() if value is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def fired(data: bytes) -> set[str]:
    return set(content_symbols(read_content(data), NOW))


def attachment(name: str) -> bytes:
    payload = base64.b64encode(b"MZ\x90\x00binary").decode()
    return build(
        content_type='multipart/mixed; boundary="b1"',
        body=(
            "--b1\r\nContent-Type: text/plain\r\n\r\nInvoice attached.\r\n"
            f'--b1\r\nContent-Type: application/octet-stream; name="{name}"\r\n'
            f'Content-Disposition: attachment; filename="{name}"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n"
            f"{payload}\r\n--b1--\r\n"
        ).encode(),
    )


HIDDEN_HTML = {
    "display none": b'<p>Hello</p><div style="display:none">buy cheap pills</div>',
    "font size zero": b'<p>Hello</p><span style="font-size:0px;">pills</span>',
    "white on white": b'<p>Hello</p><font color="#ffffff">pills pills</font>',
}


def test_clean_message_fires_nothing() -> None:
    assert fired(build()) == set()


@pytest.mark.parametrize(
    ("header", "symbol"),
    [
        ({"Date": None}, "MISSING_DATE"),
        ({"Date": "not a date"}, "INVALID_DATE"),
        ({"Date": format_datetime(NOW + timedelta(days=2))}, "DATE_IN_FUTURE"),
        ({"Date": format_datetime(NOW - timedelta(days=30))}, "DATE_IN_PAST"),
        ({"Message-ID": None}, "MISSING_MID"),
        ({"Message-ID": "abc@example.org"}, "MID_MISSING_BRACKETS"),
        ({"From": None}, "MISSING_FROM"),
        ({"To": None}, "MISSING_TO"),
        ({"Subject": None}, "MISSING_SUBJECT"),
        ({"Subject": "FREE MONEY WAITING FOR YOU"}, "SUBJ_ALL_CAPS"),
        (
            {"To": ", ".join(f"user{i}@example.test" for i in range(30))},
            "TO_EXCESSIVE",
        ),
        ({"From": "PayPal <service@random-host.example>"}, "FROM_NAME_BRAND_FORGED"),
        (
            {"From": '"ceo@example.test" <attacker@elsewhere.example>'},
            "FROM_NAME_HAS_ADDRESS",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_header_rule_fires(header, symbol) -> None:
    assert symbol in fired(build(header))


def test_brand_from_its_own_domain_not_forged() -> None:
    assert fired(build({"From": "PayPal <service@paypal.com>"})) == set()


def test_display_name_with_same_address_allowed() -> None:
    header = {"From": '"alice@example.org" <alice@example.org>'}
    assert fired(build(header)) == set()


def test_html_only_fires() -> None:
    data = build(body=b"<p>Hello there</p>", content_type="text/html; charset=utf-8")
    assert fired(data) == {"MIME_HTML_ONLY"}


@pytest.mark.parametrize("markup", list(HIDDEN_HTML.values()), ids=list(HIDDEN_HTML))
def test_hidden_html_text_fires(markup: bytes) -> None:
    data = build(body=markup, content_type="text/html; charset=utf-8")
    assert "HTML_HIDDEN_TEXT" in fired(data)


def test_white_text_on_dark_background_allowed() -> None:
    markup = b'<body bgcolor="#000000"><font color="#ffffff">Hello</font></body>'
    data = build(body=markup, content_type="text/html; charset=utf-8")
    assert "HTML_HIDDEN_TEXT" not in fired(data)


def test_multipart_without_boundary_is_invalid() -> None:
    data = build(content_type="multipart/mixed", body=b"no parts here\r\n")
    assert "MIME_INVALID" in fired(data)


def test_unknown_transfer_encoding_is_invalid() -> None:
    data = build({"Content-Transfer-Encoding": "x-uuencode-ish"})
    assert "MIME_INVALID" in fired(data)


def test_executable_attachment_fires() -> None:
    assert fired(attachment("setup.exe")) == {"MIME_BAD_EXTENSION"}


def test_double_extension_fires_both() -> None:
    assert fired(attachment("invoice.pdf.scr")) == {
        "MIME_BAD_EXTENSION",
        "MIME_DOUBLE_BAD_EXTENSION",
    }


def test_document_attachment_allowed() -> None:
    assert fired(attachment("report.pdf")) == set()


def test_numeric_ip_link_fires() -> None:
    data = build(body=b"Log in at http://192.0.2.7/login now\r\n")
    assert fired(data) == {"URL_NUMERIC_IP"}


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        ({"spf": ["spf=fail smtp.mailfrom=example.org"]}, {"R_SPF_FAIL"}),
        ({"spf": ["spf=softfail smtp.mailfrom=example.org"]}, {"R_SPF_SOFTFAIL"}),
        ({"dkim": ["dkim=fail header.d=example.org"]}, {"R_DKIM_REJECT"}),
        ({"dmarc": ["dmarc=fail header.from=example.org"]}, {"DMARC_POLICY_FAIL"}),
        (
            {
                "spf": ["spf=pass smtp.mailfrom=example.org"],
                "dkim": ["dkim=pass header.d=example.org"],
                "dmarc": ["dmarc=pass header.from=example.org"],
            },
            {"R_SPF_ALLOW", "R_DKIM_ALLOW", "DMARC_POLICY_ALLOW"},
        ),
        ({}, set()),
    ],
    ids=[
        "spf fail",
        "spf softfail",
        "dkim fail",
        "dmarc fail",
        "all pass",
        "no checks",
    ],
)
def test_auth_symbols(results, expected) -> None:
    assert set(auth_symbols(results)) == expected


def test_gtube_fires_in_text_and_html() -> None:
    line = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n"
    assert "GTUBE" in fired(build(body=line))
    html = b"<html><body><p>" + line + b"</p></body></html>\r\n"
    assert "GTUBE" in fired(build(body=html, content_type="text/html; charset=utf-8"))
    assert "GTUBE" not in fired(build(body=b"GTUBE-STANDARD is a test string\r\n"))
