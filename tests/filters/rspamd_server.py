"""A private rspamd for the tests, and the `rspamd` fixture that starts it.

`start_rspamd()` runs Debian's rspamd (package rspamd, installed by
scripts/install-test-deps.sh) in the foreground with a config written into
a temporary directory. The config has one normal worker on 127.0.0.1 at a
free port and no controller, proxy or fuzzy worker. It loads only modules
that need neither Redis nor the network. The config does not include
/etc/rspamd/modules.d, so no plugin that queries DNS blocklists, fuzzy
hashes or HTTP maps is loaded, and the C modules are limited to regexp
and chartable (no dkim, no fuzzy_check). rspamd's resolver is pointed at
a closed UDP port on 127.0.0.1, so a lookup that some rule might still
make fails on loopback and never reaches another address. The TLD list is
a few lines, because compiling the full public suffix list took about ten
seconds here.

Actions: greylist at 4, add header at 6, reject at 15. A local rule,
GARRISON_TEST_SPAM, scores 7 for a Subject containing SPAM_MARKER, and
GARRISON_TEST_GREYLIST scores 5 for GREYLIST_MARKER, so the tests can
reach those actions without a trained classifier. rspamd itself rejects a
message containing GTUBE.

The fixture stops every rspamd it started by PID at teardown. A missing
rspamd skips the test, and fails it under CI=true.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import require_tool

GTUBE = b"XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
SPAM_MARKER = "garrison-test-spam"
GREYLIST_MARKER = "garrison-test-greylist"
START_TIMEOUT = 30.0
# Debian's package creates this user. Under root, rspamd's workers run as it.
RSPAMD_USER = "_rspamd"

CONFIG = """\
options {{
    pidfile = "{directory}/rspamd.pid";
    filters = "regexp,chartable";
    cache_file = "{directory}/symbols.cache";
    hs_cache_dir = "{directory}";
    tempdir = "{directory}";
    url_tld = "{directory}/tld.dat";
    allow_raw_input = true;
    disable_hyperscan = true;
    task_timeout = 8s;
    local_addrs = [];
    dns {{
        nameserver = ["127.0.0.1:{dns_port}"];
        timeout = 1s;
        retransmits = 1;
    }}
}}
logging {{
    type = "file";
    filename = "{directory}/rspamd.log";
    level = "info";
}}
actions {{
    reject = 15;
    add_header = 6;
    greylist = 4;
}}
.include "$CONFDIR/groups.conf"
lua = "$RULESDIR/rspamd.lua";
worker "normal" {{
    bind_socket = "127.0.0.1:{port}";
    count = 1;
}}
"""

LOCAL_RULES = """\
local function subject_has(task, marker)
  local subject = task:get_subject()
  return subject ~= nil and subject:find(marker, 1, true) ~= nil
end

rspamd_config.GARRISON_TEST_SPAM = {{
  callback = function(task) return subject_has(task, '{spam}') end,
  score = 7.0,
  description = 'Subject carries the add header test marker',
}}

rspamd_config.GARRISON_TEST_GREYLIST = {{
  callback = function(task) return subject_has(task, '{greylist}') end,
  score = 5.0,
  description = 'Subject carries the greylist test marker',
}}
"""

TLDS = "com\nnet\norg\ntest\nexample\ninvalid\nlocalhost\n"


@dataclass
class Rspamd:
    """A running private rspamd: its URL for the settings, and its process."""

    url: str
    process: subprocess.Popen[bytes]
    log_file: Path

    def stop(self) -> None:
        """Stop rspamd by PID and wait for it and its workers to exit."""
        if self.process.poll() is None:
            # rspamd's main process stops its workers on SIGTERM.
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def log(self) -> str:
        return self.log_file.read_text() if self.log_file.exists() else ""


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """Return a port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(directory: Path, port: int, dns_port: int) -> Path:
    """Write rspamd.conf, the local rules and the TLD list into `directory`."""
    config = directory / "rspamd.conf"
    config.write_text(CONFIG.format(directory=directory, port=port, dns_port=dns_port))
    (directory / "rspamd.local.lua").write_text(
        LOCAL_RULES.format(spam=SPAM_MARKER, greylist=GREYLIST_MARKER)
    )
    (directory / "tld.dat").write_text(TLDS)
    return config


def _wait_ready(rspamd: Rspamd) -> None:
    """Wait until rspamd replies to GET /ping; fail after START_TIMEOUT."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if rspamd.process.poll() is not None:
            pytest.fail(
                f"rspamd exited with {rspamd.process.returncode}: {rspamd.log()}"
            )
        try:
            with urllib.request.urlopen(f"{rspamd.url}/ping", timeout=1) as reply:
                if reply.read().strip() == b"pong":
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    pytest.fail(f"rspamd did not answer /ping within {START_TIMEOUT} s: {rspamd.log()}")


def launch(program: str, directory: Path) -> Rspamd:
    """Start rspamd with a config in `directory` and wait until it is ready."""
    port = free_port()
    # Nothing listens on this UDP port, so every DNS query fails at once.
    config = write_config(directory, port, free_port(socket.SOCK_DGRAM))
    command = [program, "-f", "-c", str(config)]
    # LOCAL_CONFDIR points rspamd's local.d and override.d includes, and
    # rspamd.local.lua, at the temporary directory instead of /etc/rspamd.
    for name in ("LOCAL_CONFDIR", "DBDIR", "RUNDIR", "LOGDIR"):
        command += ["--var", f"{name}={directory}"]
    if os.geteuid() == 0:
        shutil.chown(directory, RSPAMD_USER, RSPAMD_USER)
        for path in directory.iterdir():
            shutil.chown(path, RSPAMD_USER, RSPAMD_USER)
        command += ["-u", RSPAMD_USER, "-g", RSPAMD_USER]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    rspamd = Rspamd(f"http://127.0.0.1:{port}", process, directory / "rspamd.log")
    try:
        _wait_ready(rspamd)
    except BaseException:
        rspamd.stop()
        raise
    return rspamd


@contextlib.contextmanager
def rspamd_factory() -> Iterator[Callable[[], Rspamd]]:
    """Yield a function that starts a private rspamd; stop them all on exit."""
    program = require_tool("rspamd", "rspamd")
    started: list[Rspamd] = []
    directories: list[Path] = []

    def start() -> Rspamd:
        directory = Path(tempfile.mkdtemp(prefix="rspamd-"))
        directories.append(directory)
        rspamd = launch(program, directory)
        started.append(rspamd)
        return rspamd

    try:
        yield start
    finally:
        for rspamd in started:
            rspamd.stop()
        for directory in directories:
            shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def start_rspamd() -> Iterator[Callable[[], Rspamd]]:
    with rspamd_factory() as start:
        yield start


@pytest.fixture
def rspamd(start_rspamd: Callable[[], Rspamd]) -> Rspamd:
    """A private rspamd normal worker on 127.0.0.1, for a test that stops it."""
    return start_rspamd()


@pytest.fixture(scope="module")
def shared_rspamd() -> Iterator[Rspamd]:
    """A private rspamd shared by the tests of one module; they must not stop it."""
    with rspamd_factory() as start:
        yield start()
