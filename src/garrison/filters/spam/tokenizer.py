"""Tokens of a message for the statistical classifier.

Entry point: `tokenize(content, max_tokens)` returns the distinct tokens of
one message, at most `max_tokens`, in the order found (header tokens first,
so a long body cannot push them out):

- Selected header fields, each token prefixed with the field name.
  "subject:" words; "from:", "reply-to:" and "to:" addresses, domains
  and name words; "mid:" the Message-ID domain; "x-mailer:" the agent;
  "ct:" the content types; "received:" the relay host domains and
  "received:ip:" the /24 networks of bracketed addresses in the newest
  four Received fields; "header:<name>" for every field name present.
- Body text of the text/plain and text/html parts: Latin and other
  alphabetic words lower-cased, 3 to 12 characters (a longer word becomes
  "skip:<first character> <length rounded down to 10>", as SpamBayes
  does); CJK runs (Han, Kana, Hangul) as overlapping character bigrams,
  since these scripts have no spaces between words; and "url:" the host of
  every http(s) link, with its last two labels as a second token, plus
  "url:path:" for up to 8 words of the link's path and query.

The tokens are whole strings; the token store keys them by a 64-bit hash.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from garrison.filters.spam.content import MessageContent
from garrison.message.addresses import parse_address_list
from garrison.message.headers import decode_rfc2047

MIN_WORD = 3
MAX_WORD = 12

_CJK = re.compile(
    "[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]+"
)
_WORD_STRIP = "\"'()[]{}<>.,;:!?*-_=+|/\\`~"
_URL_HOST = re.compile(r"https?://([^/\s\"'<>:?#]+)([^\s\"'<>]*)", re.IGNORECASE)
_URL_PIECE = re.compile(r"[^/.?=&#_:;%+-]+")
_RECEIVED_HOST = re.compile(r"\b(?:from|by)\s+([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
_RECEIVED_IP = re.compile(r"\[(\d{1,3}(?:\.\d{1,3}){3})\]")
_HEADER_WORD = re.compile(r"[^\s\"'(),;:<>\[\]]+")
# Header fields whose words are tokens of their own.
_WORD_FIELDS = ("subject",)


class _Collector:
    """Distinct tokens in order of arrival, up to a cap."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.tokens: dict[str, None] = {}

    @property
    def full(self) -> bool:
        return len(self.tokens) >= self.limit

    def add(self, token: str) -> None:
        if len(self.tokens) < self.limit:
            self.tokens[token] = None

    def extend(self, tokens: Iterable[str]) -> None:
        for token in tokens:
            if len(self.tokens) >= self.limit:
                return
            self.tokens[token] = None


def tokenize(content: MessageContent, max_tokens: int = 1000) -> list[str]:
    """Return the distinct tokens of a message, header tokens first."""
    collector = _Collector(max_tokens)
    _header_tokens(content, collector)
    for text in [*content.plain, *content.html_text]:
        if collector.full:
            break
        collector.extend(text_tokens(text))
    for markup in content.html:
        collector.extend(url_tokens(markup))
    return list(collector.tokens)


def text_tokens(text: str) -> Iterable[str]:
    """Yield the word, CJK bigram and URL tokens of decoded text."""
    yield from url_tokens(text)
    for run in _CJK.findall(text):
        if len(run) == 1:
            yield run
            continue
        for index in range(len(run) - 1):
            yield run[index : index + 2]
    # Tokens are kept once each, in order of first appearance, so each
    # distinct chunk needs to be looked at only once.
    for raw in dict.fromkeys(_CJK.sub(" ", text).lower().split()):
        word = raw.strip(_WORD_STRIP)
        if len(word) < MIN_WORD or word.startswith(("http:", "https:")):
            continue
        if len(word) > MAX_WORD:
            yield f"skip:{word[0]} {len(word) // 10 * 10}"
            continue
        yield word


def url_tokens(text: str) -> Iterable[str]:
    """Yield "url:" tokens for the host of every http(s) URL in `text`."""
    for host, path in _URL_HOST.findall(text):
        host = host.lower().rstrip(".")
        yield "url:" + host
        labels = host.split(".")
        if len(labels) > 2:
            yield "url:" + ".".join(labels[-2:])
        for piece in _URL_PIECE.findall(path[:200].lower())[:8]:
            if MIN_WORD <= len(piece) <= MAX_WORD:
                yield "url:path:" + piece


def _header_tokens(content: MessageContent, collector: _Collector) -> None:
    for header in content.fields:
        collector.add("header:" + header.name.lower())
    for name in _WORD_FIELDS:
        value = content.header(name)
        if value is None:
            continue
        for word in _HEADER_WORD.findall(value):
            collector.add(f"{name}:{word.lower()}")
        for run in _CJK.findall(value):
            for index in range(max(len(run) - 1, 1)):
                collector.add(f"{name}:{run[index : index + 2]}")
    _address_tokens(content, "from", collector)
    _address_tokens(content, "reply-to", collector)
    _address_tokens(content, "to", collector)
    message_id = content.header("message-id")
    if message_id:
        domain = message_id.rpartition("@")[2].strip("<> ").lower()
        collector.add("mid:" + domain)
    mailer = content.header("x-mailer") or content.header("user-agent")
    if mailer:
        collector.add("x-mailer:" + " ".join(mailer.lower().split())[:60])
    for content_type in dict.fromkeys(content.content_types):
        collector.add("ct:" + content_type)
    for received in content.headers("received")[:4]:
        text = received.value.decode("latin-1")
        for host in _RECEIVED_HOST.findall(text):
            labels = host.lower().split(".")
            collector.add("received:" + ".".join(labels[-2:]))
        for address in _RECEIVED_IP.findall(text):
            collector.add("received:ip:" + address.rpartition(".")[0])


def _address_tokens(content: MessageContent, name: str, collector: _Collector) -> None:
    raw = content.raw_header(name)
    if raw is None:
        return
    for address in parse_address_list(raw, max_addresses=5):
        if address.host is None:
            continue
        mailbox = (address.mailbox or b"").decode("utf-8", "replace").lower()
        host = address.host.decode("utf-8", "replace").lower()
        collector.add(f"{name}:addr:{mailbox}@{host}")
        collector.add(f"{name}:domain:{host}")
        if address.name:
            for word in decode_rfc2047(address.name).lower().split():
                collector.add(f"{name}:name:{word.strip(_WORD_STRIP)}")
