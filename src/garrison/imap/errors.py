"""IMAP response codes and the error type that carries a status response.

Handlers raise `IMAPError` with the status (NO or BAD), a text fit for the
client and an optional response code; the session turns it into the tagged
reply. The code names are those of RFC 3501 §7.1 and RFC 5530.
"""

from __future__ import annotations

# RFC 3501 §7.1 response codes.
ALERT = "ALERT"
PARSE = "PARSE"
READ_ONLY = "READ-ONLY"
READ_WRITE = "READ-WRITE"
TRYCREATE = "TRYCREATE"
# RFC 5530 response codes.
UNAVAILABLE = "UNAVAILABLE"
AUTHENTICATIONFAILED = "AUTHENTICATIONFAILED"
PRIVACYREQUIRED = "PRIVACYREQUIRED"
CANNOT = "CANNOT"
SERVERBUG = "SERVERBUG"
CLIENTBUG = "CLIENTBUG"
NONEXISTENT = "NONEXISTENT"
ALREADYEXISTS = "ALREADYEXISTS"
EXPUNGEISSUED = "EXPUNGEISSUED"
LIMIT = "LIMIT"
OVERQUOTA = "OVERQUOTA"
INUSE = "INUSE"
# RFC 7888 §4.
TOOBIG = "TOOBIG"
# RFC 5530 §3.
NOPERM = "NOPERM"
# RFC 6154: CREATE with a special-use attribute the server cannot set.
USEATTR = "USEATTR"
# RFC 3516 §4.3: a Content-Transfer-Encoding the server cannot decode.
UNKNOWN_CTE = "UNKNOWN-CTE"
# RFC 4978: COMPRESS when compression is already on.
COMPRESSIONACTIVE = "COMPRESSIONACTIVE"
# RFC 5182 / RFC 3501 §6.4.4.
# The list names common charsets; SEARCH accepts every label that
# garrison.message.charsets knows.
BADCHARSET = (
    "BADCHARSET (UTF-8 US-ASCII ISO-8859-1 WINDOWS-1252 GB2312 GBK GB18030 BIG5"
    " SHIFT_JIS EUC-JP ISO-2022-JP EUC-KR KOI8-R)"
)

OK = "OK"
NO = "NO"
BAD = "BAD"


class IMAPError(Exception):
    """A command failed; `status` is NO or BAD and `text` goes to the client."""

    def __init__(self, status: str, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.code = code


def no(text: str, code: str | None = None) -> IMAPError:
    return IMAPError(NO, text, code)


def bad(text: str, code: str | None = None) -> IMAPError:
    return IMAPError(BAD, text, code)


class EndSession(Exception):
    """Close the connection after sending `* BYE text`."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text
