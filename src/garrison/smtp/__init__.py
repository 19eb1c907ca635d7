"""SMTP wire format shared by the server (`garrison.smtpd`) and future client.

Sans-I/O: nothing here reads or writes a socket.

- `parser`: command lines, paths and ESMTP parameters (RFC 5321 §4.1,
  RFC 6531 SMTPUTF8 addresses, RFC 3461 §4 xtext).
- `replies`: the `Reply` type, reply formatting and the named replies with
  enhanced status codes (RFC 5321 §4.2, RFC 2034, RFC 3463, RFC 5248).
- `data`: DATA dot-stuffing and the line checks for DATA and BDAT content
  (RFC 5321 §4.5.2, RFC 3030).
- `extensions`: EHLO keywords.

Implemented RFCs: 5321, 1870 (SIZE), 2034 (ENHANCEDSTATUSCODES), 2920
(PIPELINING), 3030 (CHUNKING, without BINARYMIME), 3207 (STARTTLS), 3463,
6152 (8BITMIME), 6531 (SMTPUTF8).
"""
