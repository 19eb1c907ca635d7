"""The typed configuration schema.

Every setting is declared once here, with its type, default, unit and
description. The same declarations validate `garrison.toml` at load time
(unknown keys are errors), and generate the documented sample config
(`garrison.config.sample`).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MiB = 1024 * 1024
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")

Protocol = Literal["smtp", "submission", "imap", "pop3"]
TLSMode = Literal["none", "starttls", "implicit"]
RelayMode = Literal["networks", "auth", "auth_own_sender"]


class Section(BaseModel):
    """Base of every config table: unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(Section):
    @field_validator("hostname")
    @classmethod
    def _hostname_is_fqdn(cls, value: str) -> str:
        labels = value.rstrip(".").split(".")
        if len(value) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
            raise ValueError("expected a host name such as mail.example.org")
        return value.rstrip(".").lower()

    hostname: str = Field(
        "localhost",
        description="Fully qualified host name used in greetings and Received headers.",
    )
    data_dir: Path = Field(
        Path("."),
        description="Directory that holds the database, message blobs and spool. "
        "A relative path is taken from the config file's directory.",
    )
    workers: int = Field(
        0,
        ge=0,
        le=256,
        description="Worker processes that share the listening sockets; "
        "0 means one per CPU core.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Lowest level of log lines written to standard error."
    )
    shutdown_grace: float = Field(
        10.0,
        description="Seconds that open transactions get to finish on SIGTERM "
        "before they are answered 421.",
    )


class TLSSettings(Section):
    cert_file: Path = Field(
        Path("tls/cert.pem"), description="PEM certificate chain for every listener."
    )
    key_file: Path = Field(Path("tls/key.pem"), description="PEM private key.")
    allow_plaintext_auth_from_loopback: bool = Field(
        True,
        description="Allow LOGIN, USER/PASS and AUTH PLAIN without TLS from "
        "127.0.0.0/8 and ::1. Other clients must use TLS first.",
    )


class SMTPSettings(Section):
    max_message_size: int = Field(
        50 * MiB, ge=1024, description="Largest accepted message, in bytes (SIZE)."
    )
    max_recipients: int = Field(
        100, ge=1, description="Recipients per transaction (RFC 5321 minimum is 100)."
    )
    max_line_length: int = Field(
        1000,
        ge=1000,
        description="Maximum text line length in a message, in bytes including CRLF.",
    )
    max_command_line_length: int = Field(
        2048,
        ge=512,
        description="Maximum command line length, in bytes including CRLF "
        "(512 plus room for extension parameters).",
    )
    command_timeout: float = Field(
        300.0, description="Seconds to wait for the next command (RFC 5321 §4.5.3.2)."
    )
    data_timeout: float = Field(
        600.0, description="Seconds to wait for each block of message data."
    )
    max_errors: int = Field(
        20, ge=1, description="Protocol errors in one session before it is closed."
    )
    tarpit_after_errors: int = Field(
        5,
        ge=0,
        description="Protocol errors in one session after which each further "
        "error reply is delayed by tarpit_delay; 0 means no delay.",
    )
    tarpit_delay: float = Field(
        1.0, ge=0, description="Seconds each error reply is delayed in the tarpit."
    )
    greeting_delay: float = Field(
        0.0,
        ge=0,
        description="Seconds the MX listeners wait before the 220 greeting; a "
        "client that sends anything before the greeting is rejected (554 5.5.1). "
        "Submission listeners do not wait, and with 0 only the input that has "
        "already arrived when the greeting is sent is checked.",
    )
    max_session_duration: float = Field(
        3600.0,
        ge=0,
        description="Seconds a session may last before it is closed "
        "(421 4.4.2); 0 means no limit.",
    )
    min_data_rate: int = Field(
        1024,
        ge=0,
        description="Minimum rate of message content during DATA and BDAT, in "
        "bytes per second over each data_rate_window; a slower session is "
        "closed (421 4.4.2). 0 means no minimum.",
    )
    data_rate_window: float = Field(
        30.0, gt=0, description="Seconds over which min_data_rate is measured."
    )
    over_quota: Literal["reject", "defer"] = Field(
        "reject",
        description="Reply to mail for an account over its storage quota: "
        "reject (552 5.2.2, permanent) or defer (452 4.2.2, the sending server "
        "retries later).",
    )


class IMAPSettings(Section):
    max_literal_size: int = Field(
        50 * MiB, ge=1024, description="Largest literal after login, in bytes."
    )
    preauth_max_literal_size: int = Field(
        8192, ge=256, description="Largest literal before login, in bytes."
    )
    max_line_length: int = Field(
        65536, ge=1024, description="Maximum command line length, in bytes."
    )
    max_search_depth: int = Field(
        32, ge=2, description="Deepest parenthesis nesting accepted in SEARCH."
    )
    autologout: float = Field(
        1800.0, description="Seconds of inactivity before a session is closed."
    )
    idle_timeout: float = Field(
        1800.0, description="Seconds an IDLE command may last before the session ends."
    )


class POP3Settings(Section):
    autologout: float = Field(
        600.0, description="Seconds of inactivity before a session is closed."
    )


class StoreSettings(Section):
    group_commit_max: int = Field(
        256, ge=1, description="Maximum number of writes that share one database commit."
    )
    blob_gc_interval: float = Field(
        3600.0,
        ge=0,
        description="Seconds between removals of message files that no "
        "message, queue entry or quarantine entry uses; 0 turns them off.",
    )
    blob_gc_grace: float = Field(
        86400.0,
        gt=0,
        description="Seconds an unused message file is kept after it was last "
        "written or reused, so that deliveries in progress keep theirs.",
    )


class DNSSettings(Section):
    nameservers: list[str] = Field(
        default_factory=list,
        description="Name servers for MX, A and AAAA lookups, as ADDRESS or "
        "ADDRESS:PORT (IPv6 as [ADDRESS]:PORT). Empty means the system resolver "
        "from /etc/resolv.conf.",
    )
    timeout: float = Field(
        10.0, gt=0, description="Seconds one DNS lookup may take in total."
    )


class QueueSettings(Section):
    max_lifetime: float = Field(
        5 * 86400.0,
        gt=0,
        description="Seconds a message may stay in the queue before its "
        "undelivered recipients are bounced (default 5 days).",
    )
    delay_warning_after: float = Field(
        4 * 3600.0,
        ge=0,
        description="Seconds after which the sender gets one delay warning for "
        "recipients still queued; 0 turns warnings off.",
    )
    min_retry_interval: float = Field(
        300.0, gt=0, description="Seconds before the first retry; doubled per attempt."
    )
    max_retry_interval: float = Field(
        4 * 3600.0, gt=0, description="Maximum wait between two delivery attempts, in seconds."
    )
    poll_interval: float = Field(
        5.0, gt=0, description="Seconds between two scans of the queue for due messages."
    )
    lease_seconds: float = Field(
        600.0,
        ge=5,
        description="Seconds a worker owns a message it is delivering; the lease "
        "is renewed while the delivery runs, and another worker may take the "
        "message over once it expires (after a crash).",
    )
    max_connections: int = Field(
        20, ge=1, description="Outbound SMTP connections open at once."
    )
    max_connections_per_domain: int = Field(
        4, ge=1, description="Outbound SMTP connections open at once to one domain."
    )
    smtp_port: int = Field(
        25,
        ge=1,
        le=65535,
        description="TCP port of remote mail servers. Only tests change it.",
    )
    connect_timeout: float = Field(
        30.0, gt=0, description="Seconds to wait for a TCP connection to a remote server."
    )
    tls_verify: bool = Field(
        False,
        description="Verify remote certificates during opportunistic STARTTLS. Off "
        "by default, as most MTAs do, because MX certificates often do not match.",
    )
    max_hops: int = Field(
        30,
        ge=5,
        description="Received headers a message may carry before it is rejected "
        "as a mail loop (RFC 5321 §6.3).",
    )
    allowed_networks: list[str] = Field(
        default_factory=list,
        description="If not empty, the SMTP client connects only to addresses in "
        "these networks (CIDR, such as 127.0.0.0/8) and defers other recipients.",
    )
    routing_override: dict[str, str] = Field(
        default_factory=dict,
        description="Routing override for tests: destination domain or MX host name "
        "mapped to HOST:PORT, used instead of DNS and smtp_port.",
    )


class SubmissionSettings(Section):
    max_messages_per_hour: int = Field(
        200,
        ge=0,
        description="Messages one authenticated account may send in any hour, "
        "counted over all workers; 0 means no limit. Over it MAIL gets 450 4.7.1.",
    )
    max_recipients_per_hour: int = Field(
        1000,
        ge=0,
        description="Recipients one authenticated account may send to in any "
        "hour; 0 means no limit. Over it RCPT gets 452 4.7.1.",
    )


class LimitsSettings(Section):
    # The per-IP count matches Postfix 3.7's smtpd_client_connection_count_limit
    # default (50). Postfix sets no rate limit by default; 600 a minute is
    # chosen to let a busy sending MTA through while bounding a flood.
    max_connections_per_ip: int = Field(
        50,
        ge=0,
        description="Open connections one client IP address may hold, over all "
        "listeners and worker processes; 0 means no limit.",
    )
    connection_rate_per_ip: int = Field(
        600,
        ge=0,
        description="New connections one client IP address may open per minute, "
        "over all listeners, counted in each worker process; 0 means no limit.",
    )
    max_connections_per_listener: int = Field(
        1000,
        ge=0,
        description="Open connections one listener accepts, over all worker "
        "processes; 0 means no limit.",
    )
    auth_failure_delay: float = Field(
        1.0,
        ge=0,
        description="Seconds before the reply to the first failed login; each "
        "further failure from the same IP address or for the same account "
        "doubles it, up to max_auth_failure_delay.",
    )
    max_auth_failure_delay: float = Field(
        16.0,
        ge=0,
        description="Upper bound, in seconds, of the delay before a failed "
        "login's reply.",
    )
    auth_failure_window: float = Field(
        900.0,
        gt=0,
        description="Seconds a failed login counts toward the delay and the "
        "automatic ban of its IP address.",
    )
    ban_after_failures: int = Field(
        10,
        ge=0,
        description="Failed logins from one IP address within "
        "auth_failure_window that ban the address, counted over all worker "
        "processes; 0 disables automatic bans.",
    )
    ban_duration: float = Field(
        3600.0,
        gt=0,
        description="Seconds an automatic ban lasts. It applies in every worker "
        "process, and 'garrison ban list' and 'garrison ban remove' show and "
        "lift it.",
    )
    ban_refresh_interval: float = Field(
        10.0,
        ge=0,
        description="Seconds between reloads of the stored bans, so 'garrison "
        "ban add' and 'remove' take effect within it; 0 reads them at every new "
        "connection.",
    )
    rejection_log_interval: float = Field(
        60.0,
        ge=0,
        description="Seconds between log lines for connections rejected from "
        "the same IP address for the same reason; repeats are counted.",
    )


# Listener keys for SMTP policy whose default depends on the protocol: an MX
# (smtp) takes mail for local domains from anyone and relays nothing, and a
# submission listener (RFC 6409) takes mail only after AUTH and relays it.
_SMTP_POLICY_DEFAULTS: dict[str, dict[str, object]] = {
    "smtp": {"auth": False, "require_auth": False, "relay": []},
    "submission": {"auth": True, "require_auth": True, "relay": ["auth"]},
}


class ListenerSettings(Section):
    @field_validator("address")
    @classmethod
    def _address_is_ip(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError("expected an IPv4 or IPv6 address such as 127.0.0.1") from None
        return value

    name: str = Field(description="Name used in logs, unique per config.")
    protocol: Protocol = Field(description="smtp, submission, imap or pop3.")
    address: str = Field(
        "127.0.0.1", description="IPv4 or IPv6 address to bind (0.0.0.0 or :: for all)."
    )
    port: int = Field(ge=0, le=65535, description="TCP port; 0 picks a free one.")
    tls: TLSMode = Field(
        "starttls",
        description="none, starttls (offered on the plain port) or implicit "
        "(TLS from the first byte, as on 465, 993 and 995).",
    )
    auth: bool = Field(
        False,
        description="SMTP listeners: offer AUTH PLAIN and LOGIN (over TLS only, "
        "see tls.allow_plaintext_auth_from_loopback). Default: true for "
        "submission, false for smtp.",
    )
    require_auth: bool = Field(
        False,
        description="SMTP listeners: reject MAIL with 530 5.7.0 until the client "
        "has authenticated. Default: true for submission, false for smtp.",
    )
    relay: list[RelayMode] = Field(
        default_factory=list,
        description="SMTP listeners: who may send to domains that are not local. "
        "Empty means nobody (closed). Any of: networks (clients in "
        "relay_networks), auth (authenticated clients), auth_own_sender "
        "(authenticated clients whose MAIL FROM is exactly their login "
        "address). Default: [] for smtp, [\"auth\"] for submission.",
    )
    relay_networks: list[str] = Field(
        default_factory=list,
        description="SMTP listeners: client networks in CIDR form (such as "
        "127.0.0.0/8) that may relay when relay includes networks.",
    )
    check_sender: bool = Field(
        True,
        description="SMTP listeners: reject MAIL FROM of an authenticated client "
        "with 553 5.7.1 unless it is the login address or one of its aliases.",
    )
    check_from_header: bool = Field(
        False,
        description="SMTP listeners: also reject a message from an authenticated "
        "client with 550 5.7.1 after DATA unless every From: header address is the login "
        "address or one of its aliases.",
    )

    @model_validator(mode="before")
    @classmethod
    def _protocol_defaults(cls, data: object) -> object:
        if isinstance(data, dict):
            defaults = _SMTP_POLICY_DEFAULTS.get(str(data.get("protocol")), {})
            data = {**defaults, **data}
        return data

    @field_validator("relay_networks")
    @classmethod
    def _check_networks(cls, networks: list[str]) -> list[str]:
        for network in networks:
            try:
                ipaddress.ip_network(network, strict=True)
            except ValueError as exc:
                raise ValueError(
                    f"{network!r} is not a network in CIDR form such as "
                    f"127.0.0.0/8 ({exc})"
                ) from None
        return networks

    @model_validator(mode="after")
    def _check_relay(self) -> ListenerSettings:
        if "networks" in self.relay and not self.relay_networks:
            raise ValueError(
                "relay includes 'networks' but relay_networks is empty; "
                "list the client networks or remove 'networks'"
            )
        if self.relay_networks and "networks" not in self.relay:
            raise ValueError(
                "relay_networks is set but relay does not include 'networks'; "
                "add it or remove relay_networks"
            )
        return self


class AntivirusSettings(Section):
    @field_validator("clamd")
    @classmethod
    def _clamd_is_local(cls, value: str) -> str:
        if value.startswith("/"):
            return value
        host, _, port = value.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(
                f"{value!r} is neither an absolute Unix socket path nor "
                "HOST:PORT on a loopback address; use a path such as "
                "/run/clamav/clamd.ctl or an address such as 127.0.0.1:3310"
            )
        return value

    enabled: bool = Field(
        False,
        description="Scan every message with clamd before it is accepted.",
    )
    clamd: str = Field(
        "/run/clamav/clamd.ctl",
        description="clamd's socket: an absolute Unix socket path, or HOST:PORT "
        "on a loopback address (IPv6 as [::1]:PORT).",
    )
    timeout: float = Field(
        30.0,
        gt=0,
        description="Seconds one scan may take in total, connecting included.",
    )
    on_infected: Literal["reject", "quarantine"] = Field(
        "reject",
        description="Action on a message clamd finds infected: reject (554 5.7.0 "
        "naming the signature) or quarantine (accept with 250 and keep it out of "
        "the mailboxes; see 'garrison quarantine list').",
    )
    on_error: Literal["defer", "accept"] = Field(
        "defer",
        description="Action when clamd cannot be reached, times out or reports an "
        "error: defer (451 4.7.0, the sending server retries later) or accept "
        "(deliver unscanned and log it). clamd reports an error for a message "
        "longer than its StreamMaxLength (100M in ClamAV 1.4, 25M in Debian's "
        "clamd.conf), so set that to at least smtp.max_message_size.",
    )


class RspamdSettings(Section):
    """Spam filtering of inbound mail by an rspamd normal worker."""

    @field_validator("url")
    @classmethod
    def _url_is_local(cls, value: str) -> str:
        rest = value.removeprefix("http://")
        authority = rest.partition("/")[0]
        host, _, port = authority.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if (
            rest == value
            or not loopback
            or not port.isdigit()
            or not 0 < int(port) < 65536
        ):
            raise ValueError(
                f"{value!r} is not an http:// URL on a loopback address with a "
                "port; use an address such as http://127.0.0.1:11333"
            )
        return value

    enabled: bool = Field(
        False,
        description="Check every inbound message with rspamd before it is accepted.",
    )
    url: str = Field(
        "http://127.0.0.1:11333",
        description="URL of rspamd's normal worker: http://HOST:PORT with a "
        "loopback IP address as HOST (IPv6 as [::1]), optionally followed by a "
        "path prefix. Requests go to /checkv2 under it.",
    )
    timeout: float = Field(
        15.0,
        gt=0,
        description="Seconds one check may take in total, connecting included. "
        "Keep it above rspamd's task_timeout (8 s by default).",
    )
    password: str = Field(
        "",
        description="Value of the Password request header, for an rspamd proxy "
        "or controller that requires one; empty sends no Password header.",
    )
    settings_id: str = Field(
        "",
        description="Value of the Settings-ID request header, which selects a "
        "settings profile in rspamd; empty sends none.",
    )
    max_size: int = Field(
        20 * MiB,
        gt=0,
        description="Largest message, in bytes, that is sent to rspamd. Larger "
        "messages are accepted without a spam check and logged.",
    )
    on_error: Literal["defer", "accept"] = Field(
        "defer",
        description="Action when rspamd cannot be reached, times out or sends an "
        "invalid reply: defer (451 4.7.1, the sending server retries later) or "
        "accept (deliver unchecked and log it).",
    )
    headers: bool = Field(
        True,
        description="Add X-Spamd-Result (score, required score and symbols) and "
        "X-Rspamd-Action fields to every checked message, and X-Spam: Yes to spam; "
        "incoming fields of those names are removed.",
    )
    junk: bool = Field(
        True,
        description="File a message into every recipient's Junk mailbox when "
        "rspamd's action is 'add header' or 'rewrite subject'; otherwise such "
        "mail goes to the INBOX with X-Spam: Yes.",
    )


# ZONE[=FILTER][*WEIGHT] of a DNS list; the octet values are range-checked
# when garrison.filters.reputation parses the list at startup.
_DNS_LIST_OCTET = r"(?:[0-9]{1,3}|\[[0-9.;]+\])"
_DNS_LIST_SITE = re.compile(
    rf"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?"
    rf"(?:={_DNS_LIST_OCTET}(?:\.{_DNS_LIST_OCTET}){{3}})?(?:\*[0-9]+)?"
)


class ReputationSettings(Section):
    """DNS block and allow lists checked for clients of the MX listeners."""

    @field_validator("dnsbl_sites", "dnswl_sites")
    @classmethod
    def _sites_are_valid(cls, value: list[str]) -> list[str]:
        for site in value:
            if not _DNS_LIST_SITE.fullmatch(site.strip()):
                raise ValueError(
                    f"invalid DNS list {site!r}; expected ZONE[=FILTER][*WEIGHT], "
                    "e.g. zen.example=127.0.0.[2..11]*3"
                )
        return value

    dnsbl_sites: list[str] = Field(
        default_factory=list,
        description="DNS block lists, as ZONE, ZONE=FILTER, ZONE*WEIGHT or "
        "ZONE=FILTER*WEIGHT, in Postfix postscreen_dnsbl_sites syntax: FILTER "
        "is the A record the list must return, each octet a number, [2..11] "
        "or [2;4;6], e.g. zen.example=127.0.0.[2..11]*3. Without a filter any "
        "A record counts. WEIGHT (default 1) adds up across lists. Empty: no "
        "list is queried.",
    )
    dnswl_sites: list[str] = Field(
        default_factory=list,
        description="DNS allow lists, in the same syntax as dnsbl_sites. A "
        "client listed in one is never rejected by a block list, and its "
        "mail gets a spam score of minus the list's weight.",
    )
    dnsbl_threshold: int = Field(
        1,
        ge=1,
        description="Total weight of the block lists a client must be listed "
        "in before its mail is rejected (554 5.7.1). A lower total only adds "
        "a DNSBL_<zone> symbol per list to the spam score.",
    )
    dnsbl_reject_at: Literal["rcpt", "connect"] = Field(
        "rcpt",
        description="When a listed client is rejected: rcpt (as Postfix "
        "reject_rbl_client with smtpd_delay_reject: each RCPT gets 554 5.7.1, "
        "so sender and recipient allow entries apply) or connect (554 5.7.1 "
        "in place of the greeting, then 503 to every command but QUIT, as "
        "RFC 5321 §3.1 allows; only a server allow entry for the client "
        "address or a DNS allow list exempts it).",
    )
    dns_timeout: float = Field(
        2.0,
        gt=0,
        description="Seconds all list queries of one client may take together; "
        "a list that has not answered by then counts as not listing it.",
    )
    cache_ttl: float = Field(
        300.0,
        ge=0,
        description="Seconds each worker keeps the list results of one client "
        "address. Results with a failed query are not kept.",
    )
    cache_size: int = Field(
        10000,
        ge=1,
        description="Maximum number of client addresses each worker keeps "
        "results for; the oldest are dropped first.",
    )
    policy_refresh_interval: float = Field(
        2.0,
        ge=0,
        description="Seconds between reloads of the local allow and block lists "
        "('garrison policy') in each worker, so a change takes effect within "
        "this time.",
    )


class AuthenticationSettings(Section):
    """Sender authentication of inbound mail (SPF, DKIM, DMARC, ARC)."""

    authserv_id: str = Field(
        "",
        description="authserv-id written into Authentication-Results fields "
        "(RFC 8601); empty means server.hostname. Incoming fields that claim "
        "this id are removed.",
    )
    enabled: bool = Field(
        False,
        description="Check SPF, DKIM, ARC and DMARC on mail received on the MX. "
        "The lookups go to dns.nameservers, or to the system resolver when that "
        "list is empty.",
    )
    spf_fail_action: Literal["record", "reject"] = Field(
        "record",
        description="Action on SPF fail: record (write the result and let DMARC "
        "decide, RFC 7489 §10.1) or reject (550 5.7.23, weakened per recipient "
        "domain by dmarc_domain_policy as a DMARC reject is). temperror and "
        "permerror are always only recorded.",
    )
    spf_time_limit: float = Field(
        20.0,
        gt=0,
        description="Seconds one SPF evaluation may take, all its DNS lookups "
        "included; past it the result is temperror.",
    )
    dkim_max_message_size: int = Field(
        10 * 1024 * 1024,
        ge=0,
        description="Largest message, in bytes, whose DKIM signatures and ARC "
        "chain are verified. A larger message gets dkim=neutral and arc=none "
        "with a comment, because verification holds the whole message in memory; "
        "when its From domain has p=reject and an aligned signature went "
        "unverified, it is filed into Junk instead of rejected.",
    )
    dkim_time_limit: float = Field(
        20.0,
        gt=0,
        description="Seconds the key lookups for the DKIM signatures of one "
        "message may take together, and again for its ARC chain; signatures "
        "left then get dkim=temperror, and the chain arc=fail.",
    )
    dkim_max_signatures: int = Field(
        8,
        ge=1,
        description="Maximum number of DKIM-Signature fields verified per message; "
        "the fields after it get dkim=policy.",
    )
    dmarc_invalid_from: Literal["reject", "record"] = Field(
        "reject",
        description="Action on a message without exactly one From field naming "
        "one domain (RFC 7489 §6.6.1): reject (handled as a DMARC failure under "
        "p=reject, so 550 5.7.1 unless dmarc_domain_policy weakens it) or record "
        "(dmarc=none without a From field, dmarc=permerror otherwise).",
    )
    dmarc_domain_policy: dict[str, Literal["enforce", "quarantine-only", "monitor"]] = (
        Field(
            default_factory=dict,
            description="How DMARC policies apply to mail for each local recipient "
            "domain: enforce (the default for unlisted domains), quarantine-only "
            "(p=reject files into Junk) or monitor (record the result only). A "
            "message is rejected only when every recipient's domain enforces; "
            "otherwise each account gets the action of its recipient's domain.",
        )
    )
    arc_trusted_sealers: list[str] = Field(
        default_factory=list,
        description="Domains (the d= of the newest ARC-Seal) whose passing ARC "
        "chain overrides a DMARC failure, such as mailing lists you trust. Empty "
        "means ARC never overrides DMARC.",
    )


class SpamSettings(Section):
    """Built-in anti-spam scoring of inbound mail (garrison.filters.spam)."""

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> SpamSettings:
        if self.reject_score <= self.junk_score:
            raise ValueError(
                f"spam.reject_score ({self.reject_score}) must be greater than "
                f"spam.junk_score ({self.junk_score})"
            )
        return self

    enabled: bool = Field(
        True,
        description="Score inbound mail and act on the score (headers, Junk, "
        "quarantine, reject).",
    )
    add_header_score: float = Field(
        6.0,
        description="Score from which X-Spam-Flag is YES. X-Spam-Score and "
        "X-Spam-Status are added to every scored message.",
    )
    junk_score: float = Field(
        6.0, description="Score from which a recipient's copy goes into Junk."
    )
    quarantine_score: float = Field(
        0.0,
        ge=0,
        description="Score from which the message is quarantined instead of "
        "delivered; 0 turns the quarantine off.",
    )
    reject_score: float = Field(
        15.0,
        description="Score from which the message is rejected with 550 5.7.1.",
    )
    min_trained: int = Field(
        50,
        ge=1,
        description="Spam and ham messages each scope (server, domain, user) "
        "must have been trained on before its token counts take part in "
        "classification.",
    )
    max_tokens: int = Field(
        1000,
        ge=10,
        description="Distinct tokens taken from one message for the classifier.",
    )
    max_scan_size: int = Field(
        1 * MiB,
        ge=1024,
        description="Bytes of a message the body rules and the classifier read; "
        "larger messages are scored on their first max_scan_size bytes.",
    )
    max_scope_tokens: int = Field(
        500_000,
        ge=1000,
        description="Token rows kept per scope; beyond it the rarest and oldest "
        "tokens are pruned after training.",
    )
    scores: dict[str, float] = Field(
        default_factory=dict,
        description="Scores that replace the built-in score of a rule, by "
        "symbol name, e.g. { R_SPF_FAIL = 2.0, BAYES_SPAM = 6.0 }; "
        "'garrison spam check' lists the symbols.",
    )


class Settings(Section):
    server: ServerSettings = ServerSettings()
    tls: TLSSettings = TLSSettings()
    smtp: SMTPSettings = SMTPSettings()
    imap: IMAPSettings = IMAPSettings()
    pop3: POP3Settings = POP3Settings()
    store: StoreSettings = StoreSettings()
    dns: DNSSettings = DNSSettings()
    queue: QueueSettings = QueueSettings()
    antivirus: AntivirusSettings = AntivirusSettings()
    submission: SubmissionSettings = SubmissionSettings()
    limits: LimitsSettings = LimitsSettings()
    authentication: AuthenticationSettings = AuthenticationSettings()
    reputation: ReputationSettings = ReputationSettings()
    rspamd: RspamdSettings = RspamdSettings()
    spam: SpamSettings = SpamSettings()
    listeners: list[ListenerSettings] = Field(default_factory=list)

    @property
    def db_path(self) -> Path:
        return self.server.data_dir / "garrison.db"

    @property
    def blob_dir(self) -> Path:
        return self.server.data_dir / "blobs"

    @property
    def spool_dir(self) -> Path:
        return self.server.data_dir / "spool"


DEVELOPMENT_PORTS: dict[str, tuple[Protocol, int, TLSMode]] = {
    "smtp": ("smtp", 2525, "starttls"),
    "submission": ("submission", 2587, "starttls"),
    "submissions": ("submission", 2465, "implicit"),
    "imap": ("imap", 2143, "starttls"),
    "imaps": ("imap", 2993, "implicit"),
    "pop3": ("pop3", 2110, "starttls"),
    "pop3s": ("pop3", 2995, "implicit"),
}

STANDARD_PORTS: dict[str, tuple[Protocol, int, TLSMode]] = {
    "smtp": ("smtp", 25, "starttls"),
    "submission": ("submission", 587, "starttls"),
    "submissions": ("submission", 465, "implicit"),
    "imap": ("imap", 143, "starttls"),
    "imaps": ("imap", 993, "implicit"),
    "pop3": ("pop3", 110, "starttls"),
    "pop3s": ("pop3", 995, "implicit"),
}
