"""SMTP server for MX and submission listeners: `SMTPServer` serves one listener.

Modules:

- `server`: connection loop, dispatch through the command table, shutdown.
- `commands`: the command table (handler, allowed states, TLS and
  pipelining flags).
- `session`: session state in three reset scopes (connection, transaction,
  recipient).
- `handlers`: EHLO, HELO, MAIL, RCPT, RSET, NOOP, QUIT, VRFY, HELP, STARTTLS.
- `auth`: AUTH with PLAIN and LOGIN.
- `policy`: required AUTH, sender ownership, hourly limits and relay modes.
- `screening`: DNS block and allow lists and the local policy lists of MX
  clients, at connect, MAIL and RCPT.
- `receiver`: DATA and BDAT, streaming content to a blob, then delivery.
- `connection`: buffered reads, batched replies, timeouts.
- `trace`: queue ids and the Return-Path and Received header fields.

RFCs: 5321 (SMTP), 1870 (SIZE), 2034 (ENHANCEDSTATUSCODES), 2920
(PIPELINING), 3030 (CHUNKING; BINARYMIME is not offered), 3207 (STARTTLS),
3848 (Received protocol types), 6152 (8BITMIME), 6531 (SMTPUTF8), 4954
(AUTH), 4616 (PLAIN), 6409 (submission), 8314 (implicit TLS), 3461 (DSN
parameters, handed to the outbound queue), 5782 (DNS block lists).

Security assumptions: every limit a client controls is bounded: line and
command length, message size, recipients, errors, and time per command and
per data block. A message with a bare CR or LF is rejected because of SMTP
smuggling. Input pipelined behind STARTTLS ends the session. Mail for
domains that are not local is rejected unless one of the listener's relay
modes allows it, and none of them lets an unauthenticated client outside
`relay_networks` relay. Passwords are accepted only over TLS (or from
loopback when allowed) and never logged.
"""

from garrison.smtpd.server import SMTPServer

__all__ = ["SMTPServer"]
