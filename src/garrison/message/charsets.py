"""Charset decoding for real-world mail, with an alias table and fallbacks.

Entry point: `decode(data, label)`. Mail in the wild is often mislabelled:
"gb2312" text that uses GBK or GB18030 characters, "us-ascii" text that is
really UTF-8, Big5 text with HKSCS characters. The alias table maps each
label to the widest compatible Python codec, and the fallback chain tries
other plausible charsets before it accepts a lossy decode. Text that is valid in
one of those charsets therefore never turns into U+FFFD.

Security: decoding never raises, and its cost is linear in the input.
"""

from __future__ import annotations

import codecs

# Labels (lower case) mapped to the Python codec that decodes them. GB2312,
# GBK and their aliases decode as GB18030 because GB18030 is a superset of
# both and senders mislabel GBK text as gb2312. Big5 decodes as Big5-HKSCS,
# a superset. Latin-1 and ASCII labels decode as windows-1252, a superset
# that gives the 0x80-0x9F bytes their usual printable meaning.
ALIASES: dict[str, str] = {
    "gb2312": "gb18030",
    "gb_2312": "gb18030",
    "gb_2312-80": "gb18030",
    "csgb2312": "gb18030",
    "x-gbk": "gb18030",
    "gbk": "gb18030",
    "cp936": "gb18030",
    "ms936": "gb18030",
    "windows-936": "gb18030",
    "euc-cn": "gb18030",
    "x-euc-cn": "gb18030",
    "chinese": "gb18030",
    "iso-ir-58": "gb18030",
    "gb18030": "gb18030",
    "hz-gb-2312": "hz",
    "hz": "hz",
    "big5": "big5hkscs",
    "big5-hkscs": "big5hkscs",
    "cn-big5": "big5hkscs",
    "csbig5": "big5hkscs",
    "x-x-big5": "big5hkscs",
    "cp950": "big5hkscs",
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "ansi_x3.4-1968": "cp1252",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "l1": "cp1252",
    "windows-1252": "cp1252",
    "cp1252": "cp1252",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "ms_kanji": "cp932",
    "windows-31j": "cp932",
    "euc-jp": "euc_jis_2004",
    "iso-2022-jp": "iso2022_jp_ext",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "windows-949": "cp949",
    "tis-620": "cp874",
    "iso-8859-11": "cp874",
    "windows-874": "cp874",
    "iso-8859-9": "cp1254",
    "latin5": "cp1254",
    "koi8-r": "koi8_r",
    "koi8-u": "koi8_u",
}

# Labels whose text is often really UTF-8: try UTF-8 first when the bytes
# contain 8-bit data, because a genuine single-byte text is rarely valid UTF-8.
_UTF8_FIRST = frozenset({"cp1252", "ascii"})

_CJK_CODECS = frozenset(
    {"gb18030", "hz", "big5hkscs", "cp932", "euc_jis_2004", "iso2022_jp_ext", "cp949"}
)


def codec_for(label: str | None) -> str | None:
    """Return the Python codec name for a MIME charset label, or None if unknown.

    The label is matched case-insensitively after stripping whitespace and
    quotes. Labels missing from `ALIASES` are looked up in Python's codec
    registry, but only text codecs are accepted (never "rot13" or "zlib").
    """
    if not label:
        return None
    name = label.strip().strip("\"'").strip().lower()
    if not name or len(name) > 64:
        return None
    if name in ALIASES:
        return ALIASES[name]
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def _strict(data: bytes, codec: str, final: bool) -> str | None:
    try:
        if final:
            return data.decode(codec)
        decoder = codecs.getincrementaldecoder(codec)("strict")
        return decoder.decode(data, final=False)
    except (UnicodeDecodeError, LookupError, ValueError):
        return None


def _looks_cjk(text: str) -> bool:
    """Return True if most non-ASCII characters are CJK ideographs or punctuation."""
    non_ascii = 0
    cjk = 0
    for char in text:
        if char < "\x80":
            continue
        non_ascii += 1
        code = ord(char)
        if (
            0x4E00 <= code <= 0x9FFF
            or 0x3400 <= code <= 0x4DBF
            or 0x3000 <= code <= 0x303F
            or 0xFF00 <= code <= 0xFFEF
        ):
            cjk += 1
    return non_ascii > 0 and cjk * 10 >= non_ascii * 8


def _ascii_compatible(codec: str | None) -> bool:
    """Return True if ASCII bytes mean ASCII text in `codec` (not HZ, UTF-7 ...)."""
    if codec is None:
        return True
    return not codec.startswith(("hz", "utf_7", "utf-7", "iso2022", "utf_16", "utf_32"))


def decode(data: bytes, label: str | None = None, *, final: bool = True) -> str:
    """Decode `data` labelled with MIME charset `label`; never raises.

    The order is: the labelled charset strictly (UTF-8 first when the label
    is ASCII or Latin-1 and the data is 8-bit), then UTF-8, then GB18030 when
    the result looks like Chinese text (or the label was a CJK charset), then
    windows-1252, and only then the labelled charset with U+FFFD replacement
    or Latin-1, which maps every byte. With `final=False` an incomplete
    multibyte sequence at the end is dropped, for callers that truncated the
    input.
    """
    codec = codec_for(label)
    if data.isascii() and _ascii_compatible(codec):
        return data.decode("ascii")

    if codec in _UTF8_FIRST:
        text = _strict(data, "utf-8", final)
        if text is not None:
            return text
    if codec is not None:
        text = _strict(data, codec, final)
        if text is not None:
            return text

    if codec != "utf-8":
        text = _strict(data, "utf-8", final)
        if text is not None:
            return text
    if codec != "gb18030":
        text = _strict(data, "gb18030", final)
        if text is not None and (codec in _CJK_CODECS or _looks_cjk(text)):
            return text
    if codec is not None and codec not in _UTF8_FIRST:
        return data.decode(codec, errors="replace")
    text = _strict(data, "cp1252", final)
    if text is not None:
        return text
    return data.decode("latin-1")
