"""Chinese mail: charset aliases, mislabelled text, RFC 2047 words, search text."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from garrison.message import analyse, extract_text
from garrison.message.charsets import codec_for, decode
from garrison.message.headers import decode_rfc2047

SAMPLES = Path(__file__).parent / "samples"


@pytest.mark.parametrize(
    ("sample", "needle"),
    [
        ("gb2312-subject.eml", "这是一封测试邮件"),
        ("gbk-labelled-gb2312.eml", "朱镕基和王堃"),
        ("hz.eml", "汉字编码"),
        ("big5.eml", "繁體中文測試"),
        ("utf8-base64.eml", "北京欢迎你"),
        ("qp-gb18030.eml", "上海的天气很好。€"),
    ],
)
def test_extract_text_finds_chinese(sample: str, needle: str) -> None:
    data = (SAMPLES / sample).read_bytes()
    text = extract_text(data, analyse(data).parts)
    assert needle in text
    assert "\ufffd" not in text


@pytest.mark.parametrize(
    ("sample", "subject"),
    [
        ("gb2312-subject.eml", "中文主题测试"),
        ("gbk-labelled-gb2312.eml", "镕堃"),
        ("big5.eml", "繁體"),
        ("utf8-base64.eml", "统一码测试"),
    ],
)
def test_subject_decoded(sample: str, subject: str) -> None:
    assert analyse((SAMPLES / sample).read_bytes()).subject == subject


def test_from_display_name_decoded() -> None:
    result = analyse((SAMPLES / "gb2312-subject.eml").read_bytes())
    assert result.from_ == "张三 <zhang@example.test>"


def test_envelope_keeps_encoded_words_raw() -> None:
    result = analyse((SAMPLES / "gb2312-subject.eml").read_bytes())
    assert b'"=?gb2312?B?' in result.envelope


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("GB2312", "gb18030"),
        ("gbk", "gb18030"),
        ("x-gbk", "gb18030"),
        ("CP936", "gb18030"),
        ("EUC-CN", "gb18030"),
        ("HZ-GB-2312", "hz"),
        ("Big5", "big5hkscs"),
        ('"utf-8"', "utf-8"),
        ("unknown-charset", None),
        ("rot13", None),
        (None, None),
    ],
)
def test_codec_aliases(label: str | None, codec: str | None) -> None:
    assert codec_for(label) == codec


def test_gbk_only_characters_labelled_gb2312() -> None:
    assert decode("镕堃喆".encode("gbk"), "gb2312") == "镕堃喆"


def test_gb18030_four_byte_labelled_gbk() -> None:
    text = "𠀀 and €"
    assert decode(text.encode("gb18030"), "gbk") == text


def test_utf8_labelled_us_ascii() -> None:
    assert decode("中文 ünïcode".encode(), "us-ascii") == "中文 ünïcode"


def test_gbk_labelled_utf8_falls_back() -> None:
    assert decode("邮件内容".encode("gbk"), "utf-8") == "邮件内容"


def test_unlabelled_gbk_detected() -> None:
    assert decode("这是中文邮件正文".encode("gbk"), None) == "这是中文邮件正文"


def test_unlabelled_latin1_not_taken_for_chinese() -> None:
    assert decode("résumé café".encode("latin-1"), None) == "résumé café"


def test_big5_hkscs_character() -> None:
    text = "香港𥚃"  # U+256C3 exists in Big5-HKSCS only
    assert decode(text.encode("big5hkscs"), "big5") == text


def test_hz_body() -> None:
    assert decode(b"~{VPND~}", "HZ-GB-2312") == "中文"


def test_truncated_multibyte_tail_dropped() -> None:
    data = "中文".encode()[:-1]
    assert decode(data, "utf-8", final=False) == "中"


def test_rfc2047_gb2312_base64() -> None:
    word = "=?gb2312?B?" + base64.b64encode("测试".encode("gb2312")).decode() + "?="
    assert decode_rfc2047(word) == "测试"


def test_rfc2047_split_multibyte_character_across_words() -> None:
    octets = "汉字".encode()
    first = base64.b64encode(octets[:2]).decode()
    second = base64.b64encode(octets[2:]).decode()
    value = f"=?utf-8?B?{first}?=\r\n =?utf-8?B?{second}?="
    assert decode_rfc2047(value) == "汉字"


def test_rfc2047_raw_8bit_gbk_header() -> None:
    assert decode_rfc2047("主题".encode("gbk")) == "主题"
