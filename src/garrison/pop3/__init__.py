"""POP3 server.

Implements RFC 1939 (POP3), RFC 2449 (CAPA, response codes, PIPELINING),
RFC 2595 §4 (STLS), RFC 3206 ([AUTH] and [SYS/...] response codes) and
RFC 5034 (AUTH, with the PLAIN mechanism of RFC 4616). APOP is not offered.

Modules: `parser` (command lines), `commands` (the command table),
`session` (read loop and dispatcher), `authorization` and `transaction`
(handlers), `maildrop` (the per-session snapshot of the INBOX),
`multiline` (byte-stuffing for RETR and TOP), `replies` (reply texts) and
`server` (`POP3Server`, the entry point).

Security: passwords are accepted only over TLS, or from a loopback address
when `tls.allow_plaintext_auth_from_loopback` is set. Bytes pipelined behind
STLS are discarded before the handshake.
"""
