"""Messages for the anti-spam tests: English and Chinese spam and ham.

Each builder takes an index so that training sets vary in their words,
the way real mail does, while keeping the vocabulary of their class.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from email.utils import format_datetime

SPAM_WORDS = [
    "viagra",
    "cheap",
    "pills",
    "discount",
    "pharmacy",
    "offer",
    "winner",
    "prize",
    "claim",
    "casino",
    "bonus",
    "lottery",
    "unsubscribe",
    "guaranteed",
    "miracle",
]
HAM_WORDS = [
    "meeting",
    "agenda",
    "project",
    "review",
    "schedule",
    "budget",
    "release",
    "notes",
    "patch",
    "deploy",
    "tomorrow",
    "lunch",
    "report",
    "quarterly",
    "roadmap",
]
CHINESE_SPAM = (
    "恭喜您获得大奖请立即点击领取奖金免费发票代开优惠活动限时抢购",
    "特价发票代开增值税发票联系电话优惠多多欢迎来电咨询",
    "网上赌场注册即送彩金百分百中奖立即领取免费优惠",
)
CHINESE_HAM = (
    "明天上午十点开会讨论项目进度请大家准备好周报",
    "关于下周的技术评审会议安排请查看附件中的议程",
    "本季度的预算报告已经更新请在周五之前审阅并反馈",
)


def now_date() -> str:
    return format_datetime(datetime.now(UTC))


def english(kind: str, index: int, subject: str | None = None) -> bytes:
    """Return a plain-text message made of the class's words."""
    words = SPAM_WORDS if kind == "spam" else HAM_WORDS
    rotated = words[index % len(words) :] + words[: index % len(words)]
    body = " ".join(rotated[:10]) + f"\r\nreference {index}\r\n"
    subject = subject or " ".join(rotated[:3])
    sender = "deals@offers.example" if kind == "spam" else "colleague@example.org"
    return (
        f"From: Sender <{sender}>\r\n"
        f"To: alice@example.test\r\n"
        f"Subject: {subject}\r\n"
        f"Date: {now_date()}\r\n"
        f"Message-ID: <{kind}{index}@example.org>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n" + body
    ).encode("ascii")


def chinese(kind: str, index: int, charset: str = "gb2312") -> bytes:
    """Return a base64 text message in Chinese, in `charset` (gb2312 or utf-8)."""
    texts = CHINESE_SPAM if kind == "spam" else CHINESE_HAM
    text = texts[index % len(texts)] + "\r\n" + texts[(index + 1) % len(texts)]
    encoded = base64.encodebytes(
        text.encode("gb18030" if charset != "utf-8" else "utf-8")
    )
    return (
        b"From: =?utf-8?b?"
        + base64.b64encode("发件人".encode())
        + b"?= <s@example.cn>\r\n"
        b"To: alice@example.test\r\n"
        b"Subject: =?utf-8?b?"
        + base64.b64encode(texts[index % len(texts)][:8].encode())
        + b"?=\r\n"
        b"Date: " + now_date().encode() + b"\r\n"
        b"Message-ID: <cn" + str(index).encode() + b"@example.cn>\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=" + charset.encode() + b"\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"\r\n" + encoded.replace(b"\n", b"\r\n")
    )
