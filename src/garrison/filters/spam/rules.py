"""Header, structure and sender-authentication rules, each a named symbol.

Entry points: `content_symbols(content, now)` runs the header and
structure rules on a `MessageContent`. `auth_symbols(results)` reads the
RFC 8601 result strings of the "spf", "dkim" and "dmarc" checks. Both
return {symbol: score}. `DEFAULT_SCORES` lists every symbol with its
built-in score; `spam.scores` replaces any of them. The names and the
scores follow rspamd 3.x and SpamAssassin 4.0 where they have the same
rule, so administrators recognise them.

Every rule is cheap: a field lookup, one regular expression over a header
value, or a scan of the HTML markup that is linear in its length.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from garrison.filters.spam.content import MessageContent
from garrison.message.addresses import parse_address_list
from garrison.message.headers import decode_rfc2047

DEFAULT_SCORES: dict[str, float] = {
    # Sender authentication, from the SPF, DKIM and DMARC checks.
    "R_SPF_FAIL": 1.0,
    "R_SPF_SOFTFAIL": 0.5,
    "R_SPF_ALLOW": -0.2,
    "R_DKIM_REJECT": 1.0,
    "R_DKIM_ALLOW": -0.2,
    "DMARC_POLICY_FAIL": 2.0,
    "DMARC_POLICY_ALLOW": -0.5,
    # Header fields.
    "MISSING_DATE": 1.0,
    "INVALID_DATE": 1.0,
    "DATE_IN_FUTURE": 2.0,
    "DATE_IN_PAST": 1.0,
    "MISSING_MID": 1.0,
    "MID_MISSING_BRACKETS": 0.5,
    "MISSING_FROM": 2.0,
    "MISSING_TO": 1.0,
    "MISSING_SUBJECT": 1.0,
    "SUBJ_ALL_CAPS": 1.5,
    "TO_EXCESSIVE": 2.0,
    "FROM_NAME_BRAND_FORGED": 3.0,
    "FROM_NAME_HAS_ADDRESS": 3.0,
    # Structure and body.
    "MIME_HTML_ONLY": 0.5,
    "HTML_HIDDEN_TEXT": 2.5,
    "MIME_INVALID": 2.0,
    "MIME_BAD_EXTENSION": 4.0,
    "MIME_DOUBLE_BAD_EXTENSION": 3.0,
    "URL_NUMERIC_IP": 1.5,
    # The Generic Test for Unsolicited Bulk Email: a test string that every
    # filter treats as certain spam, so administrators can check the reject
    # action end to end.
    "GTUBE": 1000.0,
}

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

# Dates further off than these count as forged (SpamAssassin uses several
# steps; one step each keeps it simple).
FUTURE_SECONDS = 6 * 3600
PAST_SECONDS = 4 * 86400
# To: with this many addresses or more is a mass mailing without Bcc.
EXCESSIVE_TO = 25

# Brands that phishing puts in a display name; a From domain that does not
# contain the brand makes FROM_NAME_BRAND_FORGED fire. Brands that are also
# common given names (Chase) or words (UPS) are left out.
BRANDS = (
    "paypal",
    "apple",
    "amazon",
    "microsoft",
    "office365",
    "outlook",
    "netflix",
    "dhl",
    "fedex",
    "google",
    "facebook",
    "instagram",
    "linkedin",
    "wellsfargo",
    "citibank",
    "hsbc",
    "barclays",
    "docusign",
    "dropbox",
    "ebay",
    "alibaba",
    "taobao",
    "alipay",
    "wechat",
)
# Executable or script types that mail clients may run when opened.
BAD_EXTENSIONS = frozenset(
    [
        "exe",
        "scr",
        "pif",
        "bat",
        "cmd",
        "com",
        "vbs",
        "vbe",
        "js",
        "jse",
        "wsf",
        "wsh",
        "hta",
        "msi",
        "msp",
        "lnk",
        "jar",
        "ps1",
        "cpl",
        "reg",
        "dll",
        "iso",
        "img",
    ]
)

_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_NUMERIC_URL = re.compile(r"https?://\d{1,3}(?:\.\d{1,3}){3}(?:[:/]|$)", re.IGNORECASE)
_HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?:px|pt|em)?\s*[;\"']",
    re.IGNORECASE,
)
_WHITE = r"(?:#fff\b|#ffffff\b|white\b|rgb\(\s*255\s*,\s*255\s*,\s*255\s*\))"
_WHITE_TEXT = re.compile(
    rf"(?<![-\w])color\s*:\s*{_WHITE}|<font[^>]*\bcolor\s*=\s*[\"']?{_WHITE}",
    re.IGNORECASE,
)
_DARK_BACKGROUND = re.compile(
    rf"background(?:-color)?\s*:\s*(?!{_WHITE})[#\w]|bgcolor\s*=\s*[\"']?(?!{_WHITE})[#\w]",
    re.IGNORECASE,
)
# Stop reading markup after this many characters for the style rules.
_MAX_MARKUP = 200_000


def auth_symbols(results: Mapping[str, Iterable[str]]) -> dict[str, float]:
    """Return the symbols for the SPF, DKIM and DMARC results.

    `results` maps a check name to its RFC 8601 resinfo strings, such as
    "spf=fail smtp.mailfrom=example.org". A missing check gives nothing.
    """
    found: dict[str, set[str]] = {}
    for strings in results.values():
        for resinfo in strings:
            method, _, rest = resinfo.partition("=")
            result = rest.split(None, 1)[0].lower() if rest.split() else ""
            found.setdefault(method.strip().lower(), set()).add(result)
    symbols: dict[str, float] = {}
    spf = found.get("spf", set())
    if "fail" in spf:
        symbols["R_SPF_FAIL"] = DEFAULT_SCORES["R_SPF_FAIL"]
    elif "softfail" in spf:
        symbols["R_SPF_SOFTFAIL"] = DEFAULT_SCORES["R_SPF_SOFTFAIL"]
    elif "pass" in spf:
        symbols["R_SPF_ALLOW"] = DEFAULT_SCORES["R_SPF_ALLOW"]
    dkim = found.get("dkim", set())
    if "pass" in dkim:
        symbols["R_DKIM_ALLOW"] = DEFAULT_SCORES["R_DKIM_ALLOW"]
    elif "fail" in dkim:
        symbols["R_DKIM_REJECT"] = DEFAULT_SCORES["R_DKIM_REJECT"]
    dmarc = found.get("dmarc", set())
    if "fail" in dmarc:
        symbols["DMARC_POLICY_FAIL"] = DEFAULT_SCORES["DMARC_POLICY_FAIL"]
    elif "pass" in dmarc:
        symbols["DMARC_POLICY_ALLOW"] = DEFAULT_SCORES["DMARC_POLICY_ALLOW"]
    return symbols


def content_symbols(content: MessageContent, now: datetime) -> dict[str, float]:
    """Return the header and structure rules that fire, with built-in scores."""
    names: list[str] = []
    names += _date_rules(content, now)
    names += _header_rules(content)
    names += _from_rules(content)
    names += _body_rules(content)
    return {name: DEFAULT_SCORES[name] for name in names}


def _date_rules(content: MessageContent, now: datetime) -> list[str]:
    value = content.header("date")
    if value is None:
        return ["MISSING_DATE"]
    try:
        sent = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return ["INVALID_DATE"]
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=UTC)
    offset = (sent - now).total_seconds()
    if offset > FUTURE_SECONDS:
        return ["DATE_IN_FUTURE"]
    if -offset > PAST_SECONDS:
        return ["DATE_IN_PAST"]
    return []


def _header_rules(content: MessageContent) -> list[str]:
    names = []
    message_id = content.header("message-id")
    if not message_id:
        names.append("MISSING_MID")
    elif not (message_id.startswith("<") and message_id.endswith(">")):
        names.append("MID_MISSING_BRACKETS")
    if content.raw_header("from") is None:
        names.append("MISSING_FROM")
    to = content.raw_header("to")
    if to is None:
        names.append("MISSING_TO")
    elif len(parse_address_list(to, EXCESSIVE_TO)) >= EXCESSIVE_TO:
        names.append("TO_EXCESSIVE")
    subject = content.header("subject")
    if subject is None:
        names.append("MISSING_SUBJECT")
    else:
        letters = [char for char in subject if char.isalpha() and char.isascii()]
        if len(letters) >= 10 and all(char.isupper() for char in letters):
            names.append("SUBJ_ALL_CAPS")
    return names


def _from_rules(content: MessageContent) -> list[str]:
    raw = content.raw_header("from")
    if raw is None:
        return []
    addresses = [a for a in parse_address_list(raw, 5) if a.host is not None]
    if not addresses or not addresses[0].name:
        return []
    first = addresses[0]
    name = decode_rfc2047(first.name or b"").lower()
    mailbox = (first.mailbox or b"").decode("utf-8", "replace").lower()
    host = (first.host or b"").decode("utf-8", "replace").lower()
    names = []
    for address_in_name in _ADDRESS.findall(name):
        if address_in_name != f"{mailbox}@{host}":
            names.append("FROM_NAME_HAS_ADDRESS")
            break
    words = re.findall(r"[a-z0-9]+", name)
    squeezed = "".join(words)
    domain = host.replace("-", "")
    for brand in BRANDS:
        if brand in words or squeezed.startswith(brand):
            if brand not in domain:
                names.append("FROM_NAME_BRAND_FORGED")
            break
    return names


def _body_rules(content: MessageContent) -> list[str]:
    names = []
    if any(GTUBE in text for text in [*content.plain, *content.html_text]):
        names.append("GTUBE")
    if content.html and not content.plain:
        names.append("MIME_HTML_ONLY")
    for markup in content.html:
        if _hides_text(markup[:_MAX_MARKUP]):
            names.append("HTML_HIDDEN_TEXT")
            break
    if content.mime_faults:
        names.append("MIME_INVALID")
    names += _attachment_rules(content.file_names)
    for text in [*content.plain, *content.html]:
        if "://" in text and _NUMERIC_URL.search(text[:_MAX_MARKUP]):
            names.append("URL_NUMERIC_IP")
            break
    return names


def _hides_text(markup: str) -> bool:
    # Substring tests first, because most markup has none of these words and
    # the regular expressions cost more than the scan.
    lower = markup.lower()
    if ("none" in lower or "hidden" in lower or "font-size" in lower) and (
        _HIDDEN_STYLE.search(markup)
    ):
        return True
    if not ("fff" in lower or "white" in lower or "255" in lower):
        return False
    return bool(_WHITE_TEXT.search(markup)) and not _DARK_BACKGROUND.search(markup)


def _attachment_rules(file_names: list[str]) -> list[str]:
    names = []
    for file_name in file_names:
        parts = file_name.lower().strip().rstrip(".").rsplit(".", 2)
        if len(parts) < 2 or parts[-1] not in BAD_EXTENSIONS:
            continue
        names.append("MIME_BAD_EXTENSION")
        if len(parts) == 3 and len(parts[1]) <= 4 and parts[1].isalnum():
            names.append("MIME_DOUBLE_BAD_EXTENSION")
        break
    return names
