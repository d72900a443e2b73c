"""The lifecycle commands: `cameras`, `purge [--dry-run]` and `export verify`."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from app import cli
from app.config import get_settings
from app.db import make_engine, make_session_factory, unit_of_work
from app.frames.service import Upload, ingest_frame
from app.lifecycle.bundle import BundleWriter, Role
from app.lifecycle.models import EvidenceExport
from app.lifecycle.signing import Signer, public_pem
from app.storage import build_store
from models import Profile
from tests.app.images import image_bytes


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("CCTV_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CCTV_PROFILE", "400:2:png")
    monkeypatch.setenv("CCTV_AUDIT_SAMPLE_RATE", "0")
    for name in ("CCTV_DATABASE_URL", "CCTV_STORAGE_URL", "CCTV_RETENTION_DAYS"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def ingest(days_ago: int, seed: int) -> str:
    settings = get_settings()
    captured = datetime.now(UTC) - timedelta(days=days_ago)
    with unit_of_work(make_session_factory(settings)) as session:
        result = ingest_frame(
            Upload(image_bytes(seed=seed), "cam-1", captured, []),
            session=session,
            store=build_store(settings),
            profile=Profile.parse(settings.profile),
            settings=settings,
        )
        return result.frame.id


def rows(query: str) -> list[tuple[object, ...]]:
    engine = make_engine(get_settings().database_url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(sa.text(query))]
    finally:
        engine.dispose()


def test_policy_then_purge_dry_run_then_purge(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["migrate"]) == 0
    old = [ingest(40, 1), ingest(31, 2)]
    keep = ingest(2, 3)
    assert cli.main(["cameras", "policy", "cam-1", "--retention-days", "30"]) == 0
    capsys.readouterr()

    assert cli.main(["purge", "--dry-run"]) == 0
    out, err = capsys.readouterr()
    listed = [line.split()[0] for line in out.splitlines()[1:]]
    assert listed == old  # oldest first
    assert "would delete 2 frames" in err
    assert len(rows("SELECT id FROM frames")) == 3

    assert cli.main(["purge"]) == 0
    assert "deleted 2 frames" in capsys.readouterr().err
    assert rows("SELECT id FROM frames") == [(keep,)]
    deletions = rows("SELECT key_name, frame_id FROM audit_log WHERE action = 'frame.delete'")
    assert sorted(deletions) == sorted(("system:purge", fid) for fid in old)

    assert cli.main(["cameras", "list"]) == 0
    line = capsys.readouterr().out.splitlines()[1].split()
    assert line[:3] == ["cam-1", "1", "30"]


def finished_export(days_ago: int, data: bytes) -> tuple[str, str]:
    """A done export whose bundle was built `days_ago` days ago: (export id, blob key)."""
    settings = get_settings()
    finished = datetime.now(UTC) - timedelta(days=days_ago)
    export_id, key = f"{days_ago:032d}", f"exports/00/{days_ago:032d}/bundle.zip"
    build_store(settings).put(key, data)
    with unit_of_work(make_session_factory(settings)) as session:
        session.add(
            EvidenceExport(
                id=export_id,
                state="done",
                requested_by="investigator",
                frame_ids=["f" * 32],
                include=["stored"],
                created_at=finished,
                updated_at=finished,
                finished_at=finished,
                blob_key=key,
                bytes=len(data),
                sha256="0" * 64,
            )
        )
    return export_id, key


def test_purge_lists_then_deletes_export_bundles_past_their_time(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CCTV_EXPORT_TTL_DAYS", "30")
    assert cli.main(["migrate"]) == 0
    old, old_key = finished_export(31, b"old bundle")
    recent, recent_key = finished_export(3, b"recent bundle")
    store = build_store(get_settings())
    capsys.readouterr()

    assert cli.main(["purge", "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert [line.split()[0] for line in out.splitlines()[1:]] == [old]
    assert "bundle" in out and "would delete 0 frames, 0 originals and 1 export bundle " in err
    assert store.exists(old_key)

    assert cli.main(["purge"]) == 0
    assert "deleted 0 frames, 0 originals and 1 export bundle " in capsys.readouterr().err
    assert not store.exists(old_key) and store.exists(recent_key)
    states = rows("SELECT id, state, blob_key FROM evidence_exports ORDER BY id")
    assert states == [(recent, "done", recent_key), (old, "expired", None)]
    expired = rows("SELECT key_name, detail FROM audit_log WHERE action = 'export.expire'")
    assert [(actor, old in detail) for actor, detail in expired] == [("system:purge", True)]


def test_a_bad_policy_value_names_the_option(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["migrate"]) == 0
    assert cli.main(["cameras", "policy", "cam-1", "--retention-days", "-1"]) == 1
    err = capsys.readouterr().err
    assert "--retention-days" in err and len(err.splitlines()) == 1


def signed_bundle(signer: Signer) -> bytes:
    writer = BundleWriter(signer, {"export_id": "test"})
    writer.add("frames/cam-1/a/stored.png", image_bytes(seed=1), Role.stored, frame_id="a")
    writer.add("frames/cam-1/b/stored.png", image_bytes(seed=2), Role.stored, frame_id="b")
    return writer.finish()


def test_export_verify_passes_a_good_bundle_and_names_the_altered_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signer = Signer.load_or_create(tmp_path / "key.pem")
    bundle = tmp_path / "evidence.zip"
    bundle.write_bytes(signed_bundle(signer))
    key = tmp_path / "archive.pem"
    key.write_bytes(public_pem(signer.public_key))
    assert cli.main(["export", "verify", str(bundle), "--public-key", str(key)]) == 0
    assert "OK: 2 files match" in capsys.readouterr().out

    with zipfile.ZipFile(bundle) as source:
        members = {name: source.read(name) for name in source.namelist()}
    altered = bytearray(members["frames/cam-1/b/stored.png"])
    altered[-20] ^= 0xFF
    members["frames/cam-1/b/stored.png"] = bytes(altered)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name, data in members.items():
            target.writestr(name, data)
    tampered = tmp_path / "tampered.zip"
    tampered.write_bytes(out.getvalue())
    assert cli.main(["export", "verify", str(tampered)]) == 1
    output = capsys.readouterr().out
    assert "FAILED frames/cam-1/b/stored.png: SHA-256 does not match" in output
    assert "frames/cam-1/a/" not in output

    stranger = tmp_path / "stranger.pem"
    stranger.write_bytes(public_pem(Signer.load_or_create(tmp_path / "other.pem").public_key))
    assert cli.main(["export", "verify", str(bundle), "--public-key", str(stranger)]) == 1
    assert "FAILED manifest.sig" in capsys.readouterr().out
    assert cli.main(["export", "verify", str(tmp_path / "missing.zip")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_holds_from_the_command_line_survive_purge(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["migrate"]) == 0
    held, old = ingest(40, 1), ingest(41, 2)
    in_range = ingest(35, 3)
    assert cli.main(["cameras", "policy", "cam-1", "--retention-days", "30"]) == 0
    args = ["holds", "create", "--case", "CASE-5", "--reason", "assault"]
    assert cli.main([*args, "--frames", held]) == 0
    start = (datetime.now(UTC) - timedelta(days=36)).isoformat()
    assert cli.main([*args, "--camera", "cam-1", "--from", start]) == 0
    out = capsys.readouterr().out
    assert "(1 frames held now)" in out

    assert cli.main(["purge"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[0] == old  # the one frame that went
    assert sorted(rows("SELECT id FROM frames")) == sorted([(held,), (in_range,)])

    assert cli.main(["holds", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()[1:]
    assert len(listed) == 2 and all("CASE-5" in line for line in listed)
    hold_id = listed[0].split()[0]
    assert cli.main(["holds", "release", hold_id, "--reason", "case closed"]) == 0
    assert cli.main(["holds", "release", hold_id, "--reason", "again"]) == 1
    assert "already released" in capsys.readouterr().err
    actions = rows("SELECT key_name, action FROM audit_log WHERE action LIKE 'hold.%'")
    assert ("cli:admin", "hold.release") in actions


def test_a_hold_on_unknown_frames_names_them(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["migrate"]) == 0
    missing = "e" * 32
    args = ["holds", "create", "--case", "C", "--reason", "r", "--frames", missing]
    assert cli.main(args) == 1
    assert missing in capsys.readouterr().err
    assert cli.main(["holds", "create", "--case", "C", "--reason", "r"]) == 1
    assert "frame_ids" in capsys.readouterr().err
