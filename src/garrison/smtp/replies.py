"""SMTP replies: the `Reply` type, its wire format and the named replies.

Every reply Garrison sends is one of the constants below, or one built from
them with `Reply.with_text` when the text carries a value (a queue id, a
limit). Basic codes follow RFC 5321 §4.2; enhanced status codes follow
RFC 3463 and the IANA registry of RFC 5248, sent because the server
advertises ENHANCEDSTATUSCODES (RFC 2034).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Reply:
    """One SMTP reply: basic code, enhanced status code and human text.

    `enhanced` is empty for the few replies that RFC 2034 §3 exempts from
    carrying one (the 220 greeting and the EHLO/HELO replies). `text` may
    contain "\\n" to produce a multi-line reply.
    """

    code: int
    enhanced: str
    text: str

    @property
    def is_positive(self) -> bool:
        """Whether the code is a positive completion or intermediate reply."""
        return self.code < 400

    @property
    def is_temporary(self) -> bool:
        """Whether the code is a transient negative reply (4yz)."""
        return 400 <= self.code < 500

    def with_text(self, text: str) -> Reply:
        """Return the same codes with another text."""
        return Reply(self.code, self.enhanced, text)

    def format(self, **values: object) -> Reply:
        """Return the same codes with `{name}` fields of the text filled in."""
        return Reply(self.code, self.enhanced, self.text.format(**values))

    def encode(self) -> bytes:
        """Format the reply for the wire, one CRLF-terminated line per text line.

        RFC 5321 §4.2.1: every line but the last has a hyphen after the code,
        the last has a space. RFC 2034 §3: the enhanced code starts each line.
        """
        lines = self.text.split("\n")
        prefix = f"{self.code} {self.enhanced} " if self.enhanced else f"{self.code} "
        if len(lines) == 1:
            return (prefix + lines[0] + "\r\n").encode("utf-8")

        continued = (
            f"{self.code}-{self.enhanced} " if self.enhanced else f"{self.code}-"
        )
        parts = [continued + line for line in lines[:-1]]
        parts.append(prefix + lines[-1])
        return ("\r\n".join(parts) + "\r\n").encode("utf-8")


def format_lines(code: int, lines: list[str]) -> bytes:
    """Format a multi-line reply without enhanced codes (the EHLO reply).

    RFC 5321 §4.1.1.1: the EHLO reply is `250-domain`, then one line per
    extension keyword, the last one with a space after the code.
    """
    out = [f"{code}-{line}" for line in lines[:-1]]
    out.append(f"{code} {lines[-1]}")
    return ("\r\n".join(out) + "\r\n").encode("ascii")


# -- 2yz: positive completion ---------------------------------------------

# RFC 5321 §4.2: 220 greeting, 221 closing; the host name is prepended.
SERVICE_READY = Reply(220, "", "ESMTP Garrison")
CLOSING = Reply(221, "2.0.0", "Bye")
HELP = Reply(
    214,
    "2.0.0",
    "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH",
)
OK = Reply(250, "2.0.0", "Ok")
SENDER_OK = Reply(250, "2.1.0", "Sender ok")
RECIPIENT_OK = Reply(250, "2.1.5", "Recipient ok")
RESET_OK = Reply(250, "2.0.0", "Reset ok")
QUEUED = Reply(250, "2.0.0", "Ok: queued as {queue_id}")
CHUNK_OK = Reply(250, "2.0.0", "{size} octets received")
# RFC 5321 §7.3: a server may reply 252 to VRFY so that it does not
# disclose which addresses exist.
CANNOT_VERIFY = Reply(
    252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery"
)
READY_FOR_TLS = Reply(220, "2.0.0", "Ready to start TLS")

# -- 3yz: positive intermediate -------------------------------------------

START_DATA = Reply(354, "", "End data with <CR><LF>.<CR><LF>")

# -- 4yz: transient negative ----------------------------------------------

SHUTTING_DOWN = Reply(421, "4.3.2", "Service shutting down, closing connection")
TIMEOUT = Reply(421, "4.4.2", "Timeout exceeded, closing connection")
TOO_MANY_ERRORS = Reply(421, "4.7.0", "Too many errors, closing connection")
SESSION_TOO_LONG = Reply(
    421, "4.4.2", "Maximum session duration exceeded, closing connection"
)
DATA_RATE_TOO_LOW = Reply(421, "4.4.2", "Data rate too low, closing connection")
# Sent instead of the greeting when a connection limit or a ban rejects the client.
OVER_LIMIT = Reply(421, "4.7.0", "Too many connections, try again later")
BANNED = Reply(421, "4.7.0", "Access from your address is blocked for a while")
# RFC 5321 §4.5.3.1.10: the reply to too many recipients is 452, not 552.
TOO_MANY_RECIPIENTS = Reply(452, "4.5.3", "Too many recipients")
LOCAL_ERROR = Reply(451, "4.3.0", "Local error in processing")
TLS_NOT_AVAILABLE = Reply(454, "4.7.0", "TLS not available")

# -- 5yz: permanent negative ----------------------------------------------

UNKNOWN_COMMAND = Reply(500, "5.5.1", "Command unrecognized")
NOT_IMPLEMENTED = Reply(502, "5.5.1", "Command not implemented")
LINE_TOO_LONG = Reply(500, "5.5.2", "Line too long")
SYNTAX_ERROR = Reply(501, "5.5.4", "Syntax error in parameters or arguments")
SENDER_SYNTAX = Reply(501, "5.1.7", "Bad sender address syntax")
RECIPIENT_SYNTAX = Reply(501, "5.1.3", "Bad recipient address syntax")
BAD_SEQUENCE = Reply(503, "5.5.1", "Bad sequence of commands")
NEED_EHLO = Reply(503, "5.5.1", "Send EHLO or HELO first")
NEED_MAIL = Reply(503, "5.5.1", "Need MAIL command first")
NEED_RCPT = Reply(503, "5.5.1", "Need RCPT command first")
NESTED_MAIL = Reply(503, "5.5.1", "Sender already specified")
ALREADY_TLS = Reply(503, "5.5.1", "TLS already active")
DATA_AFTER_BDAT = Reply(503, "5.5.1", "DATA is not allowed in a BDAT transaction")
BDAT_FAILED = Reply(503, "5.5.1", "Earlier BDAT failed; send RSET")
STARTTLS_PIPELINED = Reply(
    554, "5.5.1", "Commands pipelined after STARTTLS were discarded; closing connection"
)
MUST_USE_TLS = Reply(530, "5.7.0", "Must issue a STARTTLS command first")
UNSUPPORTED_PARAMETER = Reply(555, "5.5.4", "Unsupported parameter")
PARAMETER_SYNTAX = Reply(501, "5.5.4", "Invalid parameter value")
BINARYMIME_NOT_SUPPORTED = Reply(555, "5.6.3", "BODY=BINARYMIME is not supported")
# RFC 6531 requires the SMTPUTF8 parameter on MAIL before any non-ASCII path.
NEEDS_SMTPUTF8 = Reply(
    553, "5.6.7", "Non-ASCII address requires the SMTPUTF8 parameter"
)
USER_UNKNOWN = Reply(550, "5.1.1", "User unknown")
# RFC 3463 §3.3: X.2.2 mailbox full; permanent (5) or transient (4).
MAILBOX_FULL = Reply(552, "5.2.2", "Mailbox full: the recipient is over quota")
MAILBOX_FULL_DEFER = Reply(452, "4.2.2", "Mailbox full: the recipient is over quota")
RELAY_DENIED = Reply(554, "5.7.1", "Relay access denied")
# Client and sender screening (garrison.smtpd.screening). The DNSBL text
# follows Postfix's reject_rbl_client reply, which senders' admins know.
CLIENT_BLOCKED_DNSBL = Reply(
    554, "5.7.1", "Service unavailable; client [{ip}] blocked using {zone}"
)
CLIENT_BLOCKED_POLICY = Reply(
    554, "5.7.1", "Service unavailable; client [{ip}] blocked by local policy"
)
SENDER_BLOCKED = Reply(550, "5.7.1", "Sender address <{sender}> blocked by local policy")
RECIPIENT_BLOCKS_SENDER = Reply(
    550, "5.7.1", "Recipient <{recipient}> does not accept mail from this sender"
)
# RFC 5321 §3.1: after a 554 greeting the server answers 503 until QUIT.
SESSION_REFUSED = Reply(503, "5.5.1", "Service refused at connect; send QUIT")
MESSAGE_TOO_BIG = Reply(552, "5.3.4", "Message size exceeds fixed maximum message size")
DATA_LINE_TOO_LONG = Reply(
    500, "5.5.2", "Message line too long, limit is {limit} octets"
)
# A bare CR or LF lets a message smuggle a second message past servers that
# read line ends differently (the 2023 "SMTP smuggling" family).  554 is the
# RFC 5321 §4.2.5 code for a failed transaction after the final dot, and
# X.6.0 (RFC 3463 §3.7) classes the fault as malformed content.
BARE_LINE_ENDING = Reply(
    554, "5.6.0", "Message contains a bare CR or LF; lines must end with CRLF"
)
TRANSACTION_FAILED = Reply(554, "5.0.0", "Transaction failed")
# Sent before closing the session of a client that does not wait for replies.
EARLY_TALKER = Reply(554, "5.5.1", "Protocol error: input sent before the greeting")
UNEXPECTED_PIPELINING = Reply(
    554, "5.5.1", "Protocol error: command sent before the previous reply"
)
# RFC 5321 §6.3 and RFC 3463 §3.5: too many hops (X.4.6), a mail loop.
MAIL_LOOP = Reply(554, "5.4.6", "Too many Received headers: mail loop detected")

# -- AUTH (RFC 4954) and submission policy (RFC 6409) ---------------------

AUTH_OK = Reply(235, "2.7.0", "Authentication successful")
# RFC 4954 §4: a server challenge is 334 and base64 text, no enhanced code.
AUTH_CHALLENGE = Reply(334, "", "{challenge}")
AUTH_TEMPORARY_FAILURE = Reply(454, "4.7.0", "Temporary authentication failure")
TOO_MANY_AUTH_FAILURES = Reply(
    421, "4.7.0", "Too many authentication failures, closing connection"
)
AUTH_LINE_TOO_LONG = Reply(500, "5.5.6", "Authentication exchange line is too long")
AUTH_CANCELLED = Reply(501, "5.0.0", "Authentication cancelled")
AUTH_INVALID_BASE64 = Reply(501, "5.5.2", "Invalid base64 data")
AUTH_MALFORMED = Reply(501, "5.5.2", "Malformed authentication data")
ALREADY_AUTHENTICATED = Reply(503, "5.5.1", "Already authenticated")
AUTH_UNKNOWN_MECHANISM = Reply(504, "5.5.4", "Unrecognized authentication type")
AUTH_REQUIRED = Reply(530, "5.7.0", "Authentication required")
AUTH_FAILED = Reply(535, "5.7.8", "Authentication credentials invalid")
ENCRYPTION_REQUIRED = Reply(
    538, "5.7.11", "Encryption required for requested authentication mechanism"
)
# RFC 3463 §3.8: X.7.1 means the sender is not authorized to send this.
SENDER_NOT_OWNED = Reply(
    553, "5.7.1", "Sender address is not owned by the authenticated user"
)
FROM_HEADER_NOT_OWNED = Reply(
    550, "5.7.1", "From: header address is not owned by the authenticated user"
)
# The anti-spam score reached spam.reject_score. The text names no rule, so
# a sender cannot tune a message against the rules from the reply.
SPAM_REJECTED = Reply(550, "5.7.1", "Message rejected as spam")
MESSAGE_RATE_EXCEEDED = Reply(
    450, "4.7.1", "Hourly limit of {limit} messages reached; try again later"
)
RECIPIENT_RATE_EXCEEDED = Reply(
    452, "4.7.1", "Hourly limit of {limit} recipients reached; try again later"
)
RELAY_NOT_AVAILABLE = Reply(
    451, "4.3.0", "Outbound delivery is not available; try again later"
)

# -- Content filters ------------------------------------------------------

# RFC 3463 §3.8: X.7.0 is "other or undefined security status". The text
# names clamd's signature so the sender can identify the infected part.
VIRUS_FOUND = Reply(554, "5.7.0", "Message rejected: virus {signature} found")
VIRUS_SCAN_FAILED = Reply(
    451, "4.7.0", "Virus scan failed; message not accepted, try again later"
)
# RFC 3463 §3.8: X.7.1 is "delivery not authorized, message refused". The
# texts name no rule, so a spammer learns nothing about the filter.
SPAM_FILTER_REJECTED = Reply(554, "5.7.1", "Message rejected as spam")
SPAM_FILTER_DEFERRED = Reply(
    451, "4.7.1", "Message deferred by the spam filter; try again later"
)
SPAM_FILTER_FAILED = Reply(
    451, "4.7.1", "Spam check failed; message not accepted, try again later"
)

# -- Sender authentication --------------------------------------------------

# RFC 7372 §3.2: X.7.23 means SPF validation failed.
SPF_FAILED = Reply(
    550, "5.7.23", "SPF validation failed: {domain} does not permit {ip} to send"
)
# RFC 3463 §3.8: X.7.1 means the sender is not authorized to send this.
DMARC_REJECTED = Reply(
    550, "5.7.1", "Message rejected by the DMARC policy (p=reject) of {domain}"
)
# RFC 7489 §6.6.1: without exactly one author domain DMARC cannot apply.
INVALID_FROM = Reply(
    550, "5.7.1", "Message rejected: it must have one From field naming one domain"
)
