from pathlib import Path

import pytest

from garrison.db.engine import migrate
from garrison.directory import Directory, DirectoryError

PASSWORD = "correct horse battery"


@pytest.fixture
def directory(tmp_path: Path):
    path = tmp_path / "g.db"
    migrate(path)
    opened = Directory(path)
    opened.add_domain("Example.TEST")
    yield opened
    opened.close()


def test_account_lookup_is_case_insensitive(directory: Directory) -> None:
    directory.add_account("Alice@example.test", PASSWORD)
    resolution = directory.resolve_recipient("ALICE@Example.Test")
    assert resolution.kind == "local"
    assert [a.address for a in resolution.accounts] == ["alice@example.test"]


def test_unknown_user_and_foreign_domain(directory: Directory) -> None:
    assert directory.resolve_recipient("nobody@example.test").kind == "unknown_user"
    assert directory.resolve_recipient("alice@example.org").kind == "not_local"
    assert directory.resolve_recipient("not an address").kind == "not_local"


def test_alias_chain_expands_to_accounts(directory: Directory) -> None:
    directory.add_account("alice@example.test", PASSWORD)
    directory.add_account("bob@example.test", PASSWORD)
    directory.add_alias("team@example.test", "alice@example.test")
    directory.add_alias("team@example.test", "bob@example.test")
    directory.add_alias("all@example.test", "team@example.test")
    resolution = directory.resolve_recipient("all@example.test")
    assert sorted(a.address for a in resolution.accounts) == [
        "alice@example.test",
        "bob@example.test",
    ]


def test_alias_loop_terminates(directory: Directory) -> None:
    directory.add_alias("a@example.test", "b@example.test")
    directory.add_alias("b@example.test", "a@example.test")
    assert directory.resolve_recipient("a@example.test").kind == "unknown_user"


def test_bare_postmaster_resolves_through_alias(directory: Directory) -> None:
    directory.add_account("alice@example.test", PASSWORD)
    directory.add_alias("postmaster@example.test", "alice@example.test")
    resolution = directory.resolve_recipient("Postmaster")
    assert resolution.kind == "local"
    assert resolution.accounts[0].address == "alice@example.test"


def test_password_is_stored_as_argon2id(directory: Directory) -> None:
    directory.add_account("alice@example.test", PASSWORD)
    (stored,) = directory._conn.execute("SELECT password_hash FROM accounts").fetchone()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


async def test_authenticate(directory: Directory) -> None:
    directory.add_account("alice@example.test", PASSWORD)
    account = await directory.authenticate("alice@EXAMPLE.test", PASSWORD)
    assert account is not None
    assert account.address == "alice@example.test"
    assert await directory.authenticate("alice@example.test", "wrong password") is None
    assert await directory.authenticate("nobody@example.test", PASSWORD) is None
    assert await directory.authenticate("garbage", PASSWORD) is None


async def test_password_change_invalidates_cached_login(directory: Directory) -> None:
    directory.add_account("alice@example.test", PASSWORD)
    assert await directory.authenticate("alice@example.test", PASSWORD) is not None
    directory.set_password("alice@example.test", "another password")
    assert await directory.authenticate("alice@example.test", PASSWORD) is None
    assert await directory.authenticate("alice@example.test", "another password")


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (lambda d: d.add_account("x@unknown.test", PASSWORD), "domain unknown.test not found"),
        (lambda d: d.add_account("no-at-sign", PASSWORD), "invalid address 'no-at-sign'"),
        (lambda d: d.add_account("a b@example.test", PASSWORD), "invalid local part"),
        (lambda d: d.add_domain("example.test"), "domain example.test already exists"),
        (lambda d: d.add_domain("nodot"), "invalid domain 'nodot'"),
        (lambda d: d.add_account("short@example.test", "123"), "too short"),
        (lambda d: d.remove_account("ghost@example.test"), "user ghost@example.test not found"),
        (lambda d: d.remove_alias("ghost@example.test"), "alias ghost@example.test not found"),
    ],
    ids=[
        "unknown domain",
        "address without at sign",
        "space in local part",
        "duplicate domain",
        "domain without dot",
        "short password",
        "remove missing user",
        "remove missing alias",
    ],
)
def test_invalid_changes_name_the_value(directory: Directory, action, message) -> None:
    with pytest.raises(DirectoryError, match=message):
        action(directory)


def test_duplicate_user_rejected(directory: Directory) -> None:
    directory.add_account("alice@example.test", PASSWORD)
    with pytest.raises(DirectoryError, match="user alice@example.test already exists"):
        directory.add_account("ALICE@example.test", PASSWORD)


def test_domain_with_accounts_cannot_be_removed(directory: Directory) -> None:
    directory.add_account("alice@example.test", PASSWORD)
    with pytest.raises(DirectoryError, match="still has 1 accounts"):
        directory.remove_domain("example.test")
    directory.remove_account("alice@example.test")
    directory.remove_domain("example.test")
    assert directory.list_domains() == []


def test_unicode_domain_stored_as_idna(directory: Directory) -> None:
    assert directory.add_domain("bücher.example") == "xn--bcher-kva.example"
    assert directory.is_local_domain("BÜCHER.example")


def test_quoted_local_part_in_hosted_domain_is_unknown_user(directory: Directory) -> None:
    assert directory.resolve_recipient('<"x@y"@example.test>').kind == "unknown_user"
    assert directory.resolve_recipient('<"x@y"@example.org>').kind == "not_local"


def test_ip_address_is_not_a_domain(directory: Directory) -> None:
    with pytest.raises(DirectoryError, match="an IP address is not a domain"):
        directory.add_domain("1.2.3.4")
    with pytest.raises(DirectoryError, match="longer than 253"):
        directory.add_domain(".".join(["a" * 63] * 4) + ".test")


def test_removing_account_reports_its_aliases(directory: Directory) -> None:
    directory.add_account("alice@example.test", PASSWORD)
    directory.add_alias("team@example.test", "alice@example.test")
    assert directory.remove_account("alice@example.test") == ["team@example.test"]
    assert directory.list_aliases() == []


def test_removing_missing_alias_pair_names_both(directory: Directory) -> None:
    directory.add_account("alice@example.test", PASSWORD)
    directory.add_alias("team@example.test", "alice@example.test")
    with pytest.raises(DirectoryError, match="team@example.test -> bob@example.test not found"):
        directory.remove_alias("team@example.test", "bob@example.test")
