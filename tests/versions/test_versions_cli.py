"""``jaguar model ...`` revision commands on a local folder with a local mirror as the Hub."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jaguar_sdk.cli import main
from tests.versions.versions_fixtures import CHANGED, REPO, SHA_A, SHA_B, set_main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["model", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, object]:
    code, out, _err = _run(capsys, *argv, "--json")
    return code, json.loads(out)


def test_cli_full_lifecycle(
    hub: Path, volume: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--root", str(volume), "--repo", REPO, "--no-progress"]
    hubdir = ["--hub-dir", str(hub)]
    code, data = _json(capsys, "status", *where)
    assert (code, data["current"]) == (0, None)  # type: ignore[index]

    code, data = _json(capsys, "update", *where, *hubdir)
    assert code == 0 and data["revision"] == SHA_A  # type: ignore[index]
    full_bytes = data["fetched_bytes"]  # type: ignore[index]

    set_main(hub, SHA_B)
    code, data = _json(capsys, "check", *where, *hubdir)
    assert data["update_available"] and data["latest"] == SHA_B  # type: ignore[index]

    code, data = _json(capsys, "update", *where, *hubdir)
    assert data["fetched_files"] == len(CHANGED)  # type: ignore[index]
    assert data["fetched_bytes"] < full_bytes  # type: ignore[index]

    code, out, _ = _run(capsys, "list", *where)
    assert code == 0 and f"* {SHA_B}" in out and SHA_A in out

    code, out, _ = _run(capsys, "verify", *where)
    assert code == 0 and ": ok" in out

    archive = tmp_path / "b.tar"
    assert _run(capsys, "backup", *where, str(archive))[0] == 0
    code, data = _json(capsys, "prune", *where)
    assert data["removed"] == [SHA_A]  # type: ignore[index]

    other = ["--root", str(tmp_path / "other"), "--repo", REPO, "--no-progress"]
    code, data = _json(capsys, "restore", *other, str(archive), "--switch")
    assert (code, data["revision"]) == (0, SHA_B)  # type: ignore[index]


def test_cli_errors_exit_non_zero_with_a_message(
    hub: Path, volume: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = _run(capsys, "status", "--no-progress")
    assert code == 3 and "--root" in err
    where = ["--root", str(volume), "--repo", REPO, "--no-progress"]
    code, _out, err = _run(capsys, "prune", *where)
    assert code == 2 and "no current revision" in err
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar at all" * 100)
    code, _out, err = _run(capsys, "restore", *where, str(bad))
    assert code == 2 and "damaged" in err
    code, _out, err = _run(capsys, "verify", *where, "deadbeef")
    assert code == 5 and "no revision" in err


def test_cli_verify_reports_a_flipped_byte(
    hub: Path, volume: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--root", str(volume), "--repo", REPO, "--no-progress"]
    assert _run(capsys, "update", *where, "--hub-dir", str(hub))[0] == 0
    target = volume / "models" / "acme--tiny-jaguar" / SHA_A / CHANGED[1]
    data = bytearray(target.read_bytes())
    data[0] ^= 1
    target.write_bytes(bytes(data))
    code, report = _json(capsys, "verify", *where)
    assert code == 1 and report["hash_mismatch"] == [CHANGED[1]]  # type: ignore[index]
