"""POP3 reply texts, shared by the server and its tests.

A POP3 reply is one status line, `+OK text` or `-ERR text` (RFC 1939 §3).
Error replies may start with a response code in brackets (RFC 2449 §8):
`[AUTH]` and `[SYS/TEMP]` / `[SYS/PERM]` come from RFC 3206, `[IN-USE]` and
`[LOGIN-DELAY]` from RFC 2449. Constants with `{}` fields are format strings.
"""

from __future__ import annotations

OK = "+OK"
ERR = "-ERR"

# RFC 2449 §4: the first line of a reply, greeting included, is at most 512
# octets including CRLF.
MAX_REPLY_LINE = 512

# RFC 3206 §4-5 and RFC 2449 §8.1 response codes.
CODE_AUTH = "[AUTH]"
CODE_SYS_TEMP = "[SYS/TEMP]"
CODE_SYS_PERM = "[SYS/PERM]"

# Greeting and farewells.
GREETING = "+OK {hostname} POP3 server ready"
BYE = "+OK {hostname} closing connection"
BYE_DELETED = "+OK {hostname} closing connection, {count} messages deleted"
AUTOLOGOUT = "-ERR [SYS/TEMP] autologout timer expired, closing connection"
SHUTTING_DOWN = "-ERR [SYS/TEMP] server shutting down, closing connection"
# Sent instead of the greeting when a connection limit or a ban rejects the client.
OVER_LIMIT = "-ERR [SYS/TEMP] too many connections, try again later"
BANNED = "-ERR [SYS/TEMP] access from your address is blocked for a while"
TOO_MANY_ERRORS = "-ERR too many errors, closing connection"

# Command syntax and sequence.
UNKNOWN_COMMAND = "-ERR unknown command"
WRONG_STATE = "-ERR {command} is not valid in the {state} state"
INVALID_ARGUMENTS = "-ERR invalid arguments for {command}: {detail}"
LINE_TOO_LONG = "-ERR command line too long (maximum {limit} octets)"
INVALID_COMMAND_LINE = "-ERR invalid command line: {detail}"

# CAPA (RFC 2449 §5).
CAPA_FOLLOWS = "+OK capability list follows"

# STLS (RFC 2595 §4).
STLS_READY = "+OK begin TLS negotiation"
STLS_NOT_AVAILABLE = "-ERR STLS is not available on this connection"
STLS_FAILED = "-ERR [SYS/TEMP] TLS negotiation failed"

# USER / PASS / AUTH (RFC 1939 §7, RFC 5034 §4, RFC 3206).
USER_ACCEPTED = "+OK send PASS"
PASS_WITHOUT_USER = "-ERR send USER first"
PLAINTEXT_DISALLOWED = (
    "-ERR [AUTH] plaintext authentication is not allowed without TLS, use STLS first"
)
AUTH_FAILED = "-ERR [AUTH] invalid user name or password"
AUTH_MECHANISMS_FOLLOW = "+OK SASL mechanisms follow"
AUTH_UNSUPPORTED_MECHANISM = "-ERR unsupported SASL mechanism {mechanism}"
AUTH_CONTINUE = "+ "
AUTH_CANCELLED = "-ERR authentication cancelled"
AUTH_INVALID_BASE64 = "-ERR invalid base64 in SASL response"
AUTH_MALFORMED = "-ERR [AUTH] malformed SASL PLAIN response"
AUTH_AUTHZID_MISMATCH = (
    "-ERR [AUTH] authorization identity must be empty or equal the user name"
)
AUTH_LINE_TOO_LONG = "-ERR SASL response too long (maximum {limit} octets)"
MAILDROP_READY = "+OK maildrop has {count} messages ({octets} octets)"
MAILDROP_UNAVAILABLE = "-ERR [SYS/TEMP] maildrop is unavailable, try again later"

# TRANSACTION state (RFC 1939 §5).
STAT = "+OK {count} {octets}"
LIST_FOLLOWS = "+OK {count} messages ({octets} octets)"
LIST_ONE = "+OK {number} {size}"
UIDL_FOLLOWS = "+OK unique-id listing follows"
UIDL_ONE = "+OK {number} {uid}"
RETR_FOLLOWS = "+OK {size} octets"
TOP_FOLLOWS = "+OK top of message follows"
DELE_DONE = "+OK message {number} deleted"
NOOP = "+OK"
RSET_DONE = MAILDROP_READY
NO_SUCH_MESSAGE = "-ERR no such message {number}"
MESSAGE_DELETED = "-ERR message {number} already deleted"
MESSAGE_EXPUNGED = "-ERR message {number} was removed by another session"
MESSAGE_UNREADABLE = "-ERR [SYS/TEMP] message {number} cannot be read, try again later"

# UPDATE state (RFC 1939 §6).
UPDATE_FAILED = "-ERR [SYS/TEMP] some deleted messages were not removed"

# Anything unexpected: the session id lets an administrator find the log line.
INTERNAL_ERROR = "-ERR [SYS/TEMP] internal server error (session {session})"

# End of a multi-line reply (RFC 1939 §3).
TERMINATOR = b".\r\n"
