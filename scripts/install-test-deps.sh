#!/usr/bin/env bash
# Install the Debian packages that the end-to-end tests drive as real clients:
#   swaks      SMTP client (sends the test messages)
#   postfix    smtp-source and smtp-sink, and a private Postfix instance that the
#              queue tests start as a remote MX with its own config directory;
#              the system's Postfix is not configured or started
#   isync      mbsync, the IMAP to Maildir synchroniser
#   offlineimap3  offlineimap, a second IMAP to Maildir synchroniser
#   fetchmail  POP3 client
#   mutt       IMAP and POP3 client (optional in the tests)
#   openssl    s_client for TLS checks
#   dovecot-imapd  reference IMAP server whose FETCH output the MIME tests compare
#              against; never started as a service
#   clamav-daemon  clamd, which the anti-virus tests start privately with their
#              own config and a locally built EICAR signature database; the
#              system service is never started and freshclam never runs
#   rspamd     spam filter that the rspamd tests start privately on loopback with
#              their own config directory, without Redis or DNS lookups; the
#              system service is never started
# Idempotent: packages already installed are left alone, and apt-get update
# runs only when something is missing. Needs root, as apt-get does.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

# Package name and a file it installs, to tell whether it is present.
packages=(
    "swaks:/usr/bin/swaks"
    "postfix:/usr/sbin/smtp-source"
    "isync:/usr/bin/mbsync"
    "offlineimap3:/usr/bin/offlineimap"
    "fetchmail:/usr/bin/fetchmail"
    "mutt:/usr/bin/mutt"
    "openssl:/usr/bin/openssl"
    "dovecot-imapd:/usr/sbin/dovecot"
    "clamav-daemon:/usr/sbin/clamd"
    "rspamd:/usr/bin/rspamd"
)

missing=()
for entry in "${packages[@]}"; do
    name="${entry%%:*}"
    file="${entry#*:}"
    if [ ! -e "$file" ]; then
        missing+=("$name")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: missing packages ${missing[*]}; run this script as root" >&2
    exit 1
fi

# "No configuration" keeps the postfix package from setting up a mail system;
# policy-rc.d stops the package scripts from starting the postfix service.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
policy_file=/usr/sbin/policy-rc.d
created_policy=false
if [ ! -e "$policy_file" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy_file"
    chmod 755 "$policy_file"
    created_policy=true
fi
cleanup() {
    if [ "$created_policy" = true ]; then
        rm -f "$policy_file"
    fi
}
trap cleanup EXIT

echo "install-test-deps: installing ${missing[*]}" >&2
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
