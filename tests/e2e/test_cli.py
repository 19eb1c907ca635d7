"""The `garrison` command run as a subprocess: domains, users, aliases, errors."""

from __future__ import annotations

import poplib

import pytest

from tests.e2e.conftest import ALICE, GarrisonProcess, run_cli

pytestmark = pytest.mark.e2e

NEW_PASSWORD = "new-password-2"


@pytest.fixture(scope="module")
def shared_setup(tmp_path_factory: pytest.TempPathFactory) -> GarrisonProcess:
    """One setup for the tests whose commands fail and so change nothing."""
    setup = GarrisonProcess(tmp_path_factory.mktemp("cli") / "var")
    setup.create()
    return setup


def lines(output: str) -> list[str]:
    return output.strip().splitlines()


def assert_fails_naming(result, value: str) -> None:
    """Check a non-zero exit with a one-line message that names `value`."""
    assert result.returncode != 0, f"expected failure, got: {result.stdout}"
    message = lines(result.stderr)
    assert len(message) == 1, f"expected one line, got: {result.stderr!r}"
    assert message[0].startswith("garrison: error: "), message[0]
    assert value in message[0], f"{value!r} not named in {message[0]!r}"


def test_domain_add_list_remove(garrison_setup: GarrisonProcess) -> None:
    assert lines(garrison_setup.cli("domain", "list").stdout) == ["example.test"]

    added = garrison_setup.cli("domain", "add", "Other.Test")
    assert lines(added.stdout) == ["added domain other.test"]
    assert lines(garrison_setup.cli("domain", "list").stdout) == [
        "example.test",
        "other.test",
    ]

    garrison_setup.cli("domain", "remove", "other.test")
    assert lines(garrison_setup.cli("domain", "list").stdout) == ["example.test"]


def test_user_add_list_passwd_remove(garrison_setup: GarrisonProcess) -> None:
    carol = "carol@example.test"
    garrison_setup.cli("user", "add", carol, "--password-stdin", stdin="carol-pass-1\n")
    listed = lines(garrison_setup.cli("user", "list").stdout)
    assert f"{carol}\tquota=none" in listed

    garrison_setup.cli(
        "user",
        "add",
        "dave@example.test",
        "--quota",
        "1048576",
        "--password-stdin",
        stdin="dave-pass-12\n",
    )
    listed = lines(garrison_setup.cli("user", "list").stdout)
    assert "dave@example.test\tquota=1048576" in listed

    changed = garrison_setup.cli(
        "user", "passwd", carol, "--password-stdin", stdin=NEW_PASSWORD + "\n"
    )
    assert lines(changed.stdout) == [f"password changed for {carol}"]

    garrison_setup.cli("user", "remove", carol)
    listed = lines(garrison_setup.cli("user", "list").stdout)
    assert all(not line.startswith(carol) for line in listed)


def test_alias_add_list_remove(garrison_setup: GarrisonProcess) -> None:
    garrison_setup.cli("alias", "add", "sales@example.test", ALICE)
    listed = lines(garrison_setup.cli("alias", "list").stdout)
    assert f"sales@example.test\t{ALICE}" in listed

    garrison_setup.cli("alias", "remove", "sales@example.test")
    listed = lines(garrison_setup.cli("alias", "list").stdout)
    assert all(not line.startswith("sales@") for line in listed)


@pytest.mark.parametrize(
    ("args", "stdin", "named"),
    [
        (
            ("user", "add", "x@unknown.test", "--password-stdin"),
            "long-enough-1\n",
            "unknown.test",
        ),
        (("user", "add", ALICE, "--password-stdin"), "long-enough-1\n", ALICE),
        (
            ("user", "add", "not-an-address", "--password-stdin"),
            "long-enough-1\n",
            "not-an-address",
        ),
        (("user", "remove", "nobody@example.test"), None, "nobody@example.test"),
        (
            ("user", "passwd", "nobody@example.test", "--password-stdin"),
            "long-enough-1\n",
            "nobody@example.test",
        ),
        (("domain", "add", "bad domain"), None, "bad domain"),
        (("domain", "remove", "nosuch.test"), None, "nosuch.test"),
        (
            ("alias", "add", "sales@example.test", "not-an-address"),
            None,
            "not-an-address",
        ),
        (("alias", "add", "sales@unknown.test", ALICE), None, "unknown.test"),
    ],
    ids=[
        "user in unknown domain",
        "duplicate user",
        "malformed user address",
        "remove unknown user",
        "passwd of unknown user",
        "malformed domain",
        "remove unknown domain",
        "malformed alias target",
        "alias in unknown domain",
    ],
)
def test_invalid_input_fails_naming_value(
    shared_setup: GarrisonProcess,
    args: tuple[str, ...],
    stdin: str | None,
    named: str,
) -> None:
    result = shared_setup.cli(*args, stdin=stdin, check=False)
    assert_fails_naming(result, named)


def test_unknown_config_key_fails(garrison_setup: GarrisonProcess) -> None:
    text = garrison_setup.config.read_text()
    garrison_setup.config.write_text(
        text.replace("[server]\n", "[server]\nbogus_key = 1\n")
    )
    result = garrison_setup.cli("domain", "list", check=False)
    assert_fails_naming(result, "bogus_key")


def test_missing_config_fails(tmp_path) -> None:
    missing = tmp_path / "nowhere.toml"
    result = run_cli("domain", "list", "--config", str(missing), check=False)
    assert_fails_naming(result, str(missing))


def test_user_added_while_serving_can_log_in(garrison_process: GarrisonProcess):
    carol = "carol@example.test"
    garrison_process.cli(
        "user", "add", carol, "--password-stdin", stdin="carol-pass-1\n"
    )

    pop = poplib.POP3("127.0.0.1", garrison_process.port("pop3"), timeout=15)
    try:
        pop.user(carol)
        assert pop.pass_("carol-pass-1").startswith(b"+OK")
        assert pop.stat() == (0, 0)
    finally:
        pop.quit()


def test_user_quota_set_and_clear(garrison_setup: GarrisonProcess) -> None:
    result = garrison_setup.cli("user", "quota", ALICE, "2048")
    assert result.stdout.strip() == f"quota of {ALICE} set to 2048 bytes"
    assert f"{ALICE}\tquota=2048" in lines(garrison_setup.cli("user", "list").stdout)
    garrison_setup.cli("user", "quota", ALICE, "none")
    assert f"{ALICE}\tquota=none" in lines(garrison_setup.cli("user", "list").stdout)


def test_user_quota_invalid_input(shared_setup: GarrisonProcess) -> None:
    assert_fails_naming(
        shared_setup.cli("user", "quota", ALICE, "lots", check=False), "lots"
    )
    assert_fails_naming(
        shared_setup.cli("user", "quota", "nobody@example.test", "10", check=False),
        "nobody@example.test",
    )
