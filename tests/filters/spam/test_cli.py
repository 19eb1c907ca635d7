"""`garrison spam train`, `status` and `check` on a real data directory."""

from __future__ import annotations

import asyncio
from pathlib import Path

from typer.testing import CliRunner, Result

from garrison.cli.spam import spam_app
from garrison.config import Settings
from tests.filters.spam.samples import english


async def run_cli(settings: Settings, *args: str) -> Result:
    config = str(settings.server.data_dir / "garrison.toml")
    return await asyncio.to_thread(CliRunner().invoke, spam_app, [*args, "-c", config])


def write_maildir(root: Path, label: str, count: int) -> Path:
    """Write `count` messages as a Maildir, with Dovecot and hidden files beside."""
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True)
    for index in range(count):
        sub = "cur" if index % 2 else "new"
        (root / sub / f"{index}.host:2,S").write_bytes(english(label, index))
    (root / "dovecot-uidlist").write_text("3 V1 N1\n")
    (root / ".hidden").write_text("not a message\n")
    return root


async def test_train_status_and_check(settings, tmp_path) -> None:
    spam_dir = write_maildir(tmp_path / "spam", "spam", 6)
    ham_dir = tmp_path / "ham"
    (ham_dir / "nested").mkdir(parents=True)
    for index in range(6):
        (ham_dir / "nested" / f"{index}.eml").write_bytes(
            b"From bounce@example.org Mon Dec  1 10:00:00 2026\n"
            + english("ham", index)
        )

    result = await run_cli(
        settings,
        "train",
        "--spam",
        str(spam_dir),
        "--ham",
        str(ham_dir),
        "--scope",
        "domain:Example.Test",
    )
    assert result.exit_code == 0, result.output
    assert "6 files, 6 newly trained as spam in domain:example.test" in result.stdout
    assert "6 files, 6 newly trained as ham in domain:example.test" in result.stdout

    again = await run_cli(settings, "train", "--spam", str(spam_dir))
    assert "6 files, 6 newly trained as spam in server" in again.stdout
    repeat = await run_cli(
        settings, "train", "--spam", str(spam_dir), "--scope", "domain:example.test"
    )
    assert "6 files, 0 newly trained" in repeat.stdout

    status = await run_cli(settings, "status")
    assert status.exit_code == 0, status.output
    rows = {
        line.split("\t")[0]: line.split("\t")[1:] for line in status.stdout.splitlines()
    }
    assert rows["domain:example.test"][:2] == ["6", "6"]
    assert rows["server"][:2] == ["6", "0"]

    probe = tmp_path / "probe.eml"
    probe.write_bytes(english("spam", 30))
    # The domain scope needs min_trained (50) messages of each class.
    untrained = await run_cli(
        settings, "check", str(probe), "--recipient", "alice@example.test"
    )
    assert untrained.exit_code == 0, untrained.output
    assert "classifier: not trained enough" in untrained.stdout
    assert "score: 0.00" in untrained.stdout


async def test_check_lists_rule_symbols(settings, tmp_path) -> None:
    probe = tmp_path / "probe.eml"
    probe.write_bytes(
        b"From: PayPal <x@random.example>\r\nTo: a@example.test\r\n"
        b"Authentication-Results: mx.example; spf=fail smtp.mailfrom=random.example\r\n"
        b"Subject: hi\r\n\r\nbody\r\n"
    )
    result = await run_cli(settings, "check", str(probe))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "FROM_NAME_BRAND_FORGED\t3.00" in lines
    assert "MISSING_DATE\t1.00" in lines
    assert "R_SPF_FAIL\t1.00" in lines
    assert "action: junk" in lines


async def test_train_rejects_bad_scope(settings, tmp_path) -> None:
    result = await run_cli(
        settings, "train", "--spam", str(tmp_path), "--scope", "team:x"
    )
    assert result.exit_code != 0
    assert "invalid scope 'team:x'" in result.output


async def test_train_rejects_missing_directory(settings, tmp_path) -> None:
    result = await run_cli(settings, "train", "--ham", str(tmp_path / "absent"))
    assert result.exit_code == 1
    assert "is not a directory" in result.output
