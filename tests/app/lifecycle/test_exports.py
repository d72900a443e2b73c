"""Evidence exports: a ZIP whose manifest lists every file's hash and role, signed with the
archive's key; `verify_bundle` (what `cctv-archive export verify` runs) catches tampering."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import c2pa
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from app.auth.schemas import Principal, Scope
from app.config import Settings
from app.db import unit_of_work
from app.frames import repository as frames_repository
from app.lifecycle import exports
from app.lifecycle import repository as lifecycle_repository
from app.lifecycle.bundle import verify_bundle
from app.lifecycle.retention import sweep
from app.lifecycle.schemas import ExportCreate
from tests.app.conftest import Archive, wait_for
from tests.app.images import decode, image_bytes
from tests.app.lifecycle.helpers import days_ago, frame_at


def finished(archive: Archive, export_id: str) -> dict[str, Any]:
    view: dict[str, Any] = {}

    def done() -> bool:
        view.update(archive.get(f"/v1/exports/{export_id}", key="investigator").json())
        return view["state"] in ("done", "failed")

    wait_for(done, timeout=60)
    return view


def export(archive: Archive, body: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    response = archive.client.post("/v1/exports", json=body, headers=archive.as_key("investigator"))
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/v1/exports/{response.json()['id']}"
    view = finished(archive, response.json()["id"])
    assert view["state"] == "done", view
    download = archive.get(view["links"]["download"], key="investigator")
    assert download.status_code == 200
    assert hashlib.sha256(download.content).hexdigest() == view["sha256"]
    return view, download.content


def check_content_credentials(image: bytes, stored_path: str, anchor: bytes) -> None:
    """A valid C2PA manifest naming the image AI-generated from the stored frame; its signer is
    untrusted until the bundle's trust anchor is given to the verifier."""
    reader = c2pa.Reader("image/png", io.BytesIO(image))
    assert reader.get_validation_state() == "Valid"
    failures = reader.get_validation_results()["activeManifest"]["failure"]
    assert [f["code"] for f in failures] == ["signingCredential.untrusted"]
    manifest = reader.get_active_manifest()
    assert manifest is not None
    actions = [a for x in manifest["assertions"] for a in x["data"].get("actions", [])]
    edited = [a for a in actions if a["action"] == "c2pa.edited"]
    assert edited[0]["digitalSourceType"].endswith("/trainedAlgorithmicMedia")
    [ingredient] = manifest["ingredients"]
    assert (ingredient["title"], ingredient["relationship"]) == (stored_path, "parentOf")
    trust = {"verify": {"verify_trust": True}, "trust": {"trust_anchors": anchor.decode()}}
    context = c2pa.Context(c2pa.Settings.from_dict(trust))
    trusted = c2pa.Reader("image/png", io.BytesIO(image), context=context)
    assert trusted.get_validation_state() == "Trusted"
    assert decode(image).info["cctv:AI-Generated"] == "true"  # the archive's own label stays
    tampered = bytearray(image)
    tampered[image.index(b"IDAT") + 20] ^= 0x01  # a pixel byte, not the manifest's
    assert c2pa.Reader("image/png", io.BytesIO(bytes(tampered))).get_validation_state() == (
        "Invalid"
    )


def archive_key_pem(archive: Archive) -> bytes:
    response = archive.client.get("/v1/signing-key")  # public: recipients have no API key
    assert response.status_code == 200
    return str(response.json()["public_key_pem"]).encode()


def rewrite(bundle: bytes, change: Callable[[dict[str, bytes]], None]) -> bytes:
    """The bundle with its members changed by `change` (name -> bytes), zipped again."""
    with zipfile.ZipFile(io.BytesIO(bundle)) as source:
        members = {name: source.read(name) for name in source.namelist()}
    change(members)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name, data in members.items():
            target.writestr(name, data)
    return out.getvalue()


@pytest.fixture
def kept_archive(archive_factory: Any, settings_with: Callable[..., Settings]) -> Archive:
    archive: Archive = archive_factory(settings_with(originals_hours=48))
    return archive


def test_an_export_holds_every_file_with_its_hash_role_and_source_and_verifies(
    kept_archive: Archive,
) -> None:
    archive = kept_archive
    uploads = [image_bytes("JPEG", width=48, height=40, seed=i) for i in range(2)]
    ids = [archive.frame_id(d, captured_at=days_ago(2 - i)) for i, d in enumerate(uploads)]
    archive.get(f"/v1/frames/{ids[0]}/stored", key="investigator").raise_for_status()

    view, bundle = export(
        archive,
        {"frame_ids": ids, "include": ["stored", "original", "restored", "bicubic"]},
    )

    with zipfile.ZipFile(io.BytesIO(bundle)) as zipped:
        manifest = json.loads(zipped.read("manifest.json"))
        files = {entry["path"]: entry for entry in manifest["files"]}
        for path, entry in files.items():
            assert hashlib.sha256(zipped.read(path)).hexdigest() == entry["sha256"], path
        roles = sorted(entry["role"] for entry in files.values())
        assert roles == sorted(
            ["stored", "original", "ai-generated-derivative", "interpolated"] * 2
            + ["audit-trail", "c2pa-trust-anchor"]
        )
        originals = [e for e in files.values() if e["role"] == "original"]
        assert sorted(zipped.read(e["path"]) for e in originals) == sorted(uploads)
        restored = [e for e in files.values() if e["role"] == "ai-generated-derivative"]
        for entry in restored:
            assert entry["model_name"] == "tiny-test"
            assert entry["weights_sha256"] == archive.runtime.restorer.weights_sha256
            assert entry["degradation_id"] == archive.runtime.profile.degradation_id
            assert entry["camera_id"] == "cam-1"
            stored_path = entry["path"].rsplit("/", 1)[0] + "/stored.png"
            check_content_credentials(
                zipped.read(entry["path"]), stored_path, zipped.read("c2pa-trust-anchor.pem")
            )
        trail = [json.loads(line) for line in zipped.read("audit-trail.jsonl").splitlines()]
        reads = [(e["frame_id"], e["action"]) for e in trail]
        assert (ids[0], "frame.stored.read") in reads
        assert sorted(f for f, a in reads if a == "export.create") == sorted(ids)
        signature = base64.b64decode(zipped.read("manifest.sig"))
        public = serialization.load_pem_public_key(archive_key_pem(archive))
        assert isinstance(public, Ed25519PublicKey)
        public.verify(signature, zipped.read("manifest.json"))  # raises if it does not match
    assert view["summary"]["files_by_role"]["original"] == 2

    verdict = verify_bundle(bundle, public_key_pem=archive_key_pem(archive))
    assert verdict.ok, verdict.problems
    assert verdict.files_checked == len(files)


def test_verify_names_a_flipped_byte_a_swapped_file_and_a_wrong_signature(
    kept_archive: Archive,
) -> None:
    archive = kept_archive
    ids = [archive.frame_id(image_bytes(seed=i)) for i in range(2)]
    _, bundle = export(archive, {"frame_ids": ids, "include": ["stored", "original"]})
    with zipfile.ZipFile(io.BytesIO(bundle)) as zipped:
        manifest = json.loads(zipped.read("manifest.json"))
    first, second = (e["path"] for e in manifest["files"] if e["role"] == "stored")

    def flip(members: dict[str, bytes]) -> None:
        data = bytearray(members[first])
        data[len(data) // 2] ^= 0x01
        members[first] = bytes(data)

    flipped = verify_bundle(rewrite(bundle, flip))
    assert flipped.problems == [f"{first}: SHA-256 does not match the manifest (altered)"]

    def swap(members: dict[str, bytes]) -> None:
        members[first], members[second] = members[second], members[first]

    swapped = verify_bundle(rewrite(bundle, swap))
    assert sorted(swapped.problems) == sorted(
        f"{path}: SHA-256 does not match the manifest (altered)" for path in (first, second)
    )

    def resign(members: dict[str, bytes]) -> None:  # someone else's key signs an edited manifest
        edited = json.loads(members["manifest.json"])
        edited["requested_by"] = "someone else"
        members["manifest.json"] = json.dumps(edited).encode()
        other = Ed25519PrivateKey.generate()
        members["manifest.sig"] = base64.b64encode(other.sign(members["manifest.json"]))

    wrong = verify_bundle(rewrite(bundle, resign), public_key_pem=archive_key_pem(archive))
    assert [p.split(":")[0] for p in wrong.problems] == ["manifest.sig"]
    assert not verify_bundle(rewrite(bundle, resign)).ok  # against the bundled key as well

    def extra(members: dict[str, bytes]) -> None:
        members["frames/cam-1/planted.png"] = b"not from the archive"

    assert verify_bundle(rewrite(bundle, extra)).problems == [
        "frames/cam-1/planted.png: in the bundle but not in the manifest"
    ]
    assert verify_bundle(bundle).ok


def test_a_camera_range_export_and_the_limits(
    archive_factory: Any, settings_with: Callable[..., Settings]
) -> None:
    archive: Archive = archive_factory(settings_with(export_max_frames=2))
    ids = [frame_at(archive, 3 - i, seed=i) for i in range(3)]
    body = {"camera_id": "cam-1", "from": days_ago(3.5), "to": days_ago(1.5)}
    view, bundle = export(archive, body)
    assert view["frames"] == 2
    with zipfile.ZipFile(io.BytesIO(bundle)) as zipped:
        manifest = json.loads(zipped.read("manifest.json"))
    assert [f["frame_id"] for f in manifest["frames"]] == ids[:2]  # in capture order
    # The default asks for stored frames and originals; this archive keeps no originals.
    assert view["include"] == ["stored", "original"]
    assert view["summary"]["originals_not_kept"] == ids[:2]
    assert view["summary"]["files_by_role"] == {"stored": 2, "audit-trail": 1}

    too_many = archive.client.post(
        "/v1/exports", json={"camera_id": "cam-1"}, headers=archive.as_key("investigator")
    )
    assert too_many.status_code == 422
    assert "at most 2 frames" in too_many.json()["error"]["message"]


def test_unknown_frames_and_cameras_are_404_naming_them(archive: Archive) -> None:
    known = archive.frame_id()
    headers = archive.as_key("admin")
    missing = "f" * 32
    for path, extra in (("/v1/exports", {}), ("/v1/holds", {"case_reference": "C", "reason": "r"})):
        response = archive.client.post(
            path, json={"frame_ids": [known, missing], **extra}, headers=headers
        )
        assert response.status_code == 404, response.text
        assert missing in response.json()["error"]["message"]
        response = archive.client.post(
            path, json={"camera_id": "cam-nowhere", **extra}, headers=headers
        )
        assert response.status_code == 404
        assert "cam-nowhere" in response.json()["error"]["message"]
    assert archive.count("evidence_exports") == 0 and archive.count("legal_holds") == 0


def test_unknown_exports_are_404(archive: Archive) -> None:
    for path in (f"/v1/exports/{'0' * 32}", f"/v1/exports/{'0' * 32}/download"):
        response = archive.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "export_not_found"


def test_frames_deleted_mid_export_fail_it_clearly_and_leave_no_bundle(
    archive: Archive,
) -> None:
    """Retention deleting a frame after the export was accepted (row gone), or while it is read
    (blob gone first): the export fails naming the frame, never a signed bundle without it."""
    context = archive.runtime.restore
    signer = archive.runtime.exports.signer
    principal = Principal(key_id=0, name="investigator", scopes=frozenset({Scope.read}))
    ids = [archive.frame_id(image_bytes(seed=i)) for i in range(3)]
    request = ExportCreate(frame_ids=ids)
    row_gone = exports.create_export(request, principal=principal, context=context)
    blob_gone = exports.create_export(request, principal=principal, context=context)
    with unit_of_work(context.session_factory) as session:
        stored_key = frames_repository.get(session, ids[1]).stored_key  # type: ignore[union-attr]
    context.store.delete(stored_key)
    exports.build_export(blob_gone.id, context=context, signer=signer)
    with unit_of_work(context.session_factory) as session:
        lifecycle_repository.delete_frames(session, [ids[1]])
    exports.build_export(row_gone.id, context=context, signer=signer)

    for export_id, says in ((blob_gone.id, ids[1]), (row_gone.id, ids[1])):
        view = archive.get(f"/v1/exports/{export_id}").json()
        assert view["state"] == "failed"
        assert says in view["error"]
        download = archive.get(f"/v1/exports/{export_id}/download")
        assert download.status_code == 409
        assert download.json()["error"]["code"] == "export_not_ready"
    assert not [key for key in archive.blobs() if key.startswith("exports/")]


def test_an_export_built_twice_keeps_the_bundle_it_recorded(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two builders of one export (replicas resuming a stale one), the second finishing while
    the first is still bundling: the bundle recorded first stays, byte for byte, and the other
    builder's blob is removed."""
    context = archive.runtime.restore
    signer = archive.runtime.exports.signer
    principal = Principal(key_id=0, name="investigator", scopes=frozenset({Scope.read}))
    request = ExportCreate(frame_ids=[archive.frame_id()])
    created = exports.create_export(request, principal=principal, context=context)
    real_bundle = exports._bundle
    raced: list[bool] = []

    def bundle_while_another_finishes(*args: Any, **kwargs: Any) -> Any:
        result = real_bundle(*args, **kwargs)
        if not raced:
            raced.append(True)
            exports.build_export(created.id, context=context, signer=signer)
        return result

    monkeypatch.setattr(exports, "_bundle", bundle_while_another_finishes)
    exports.build_export(created.id, context=context, signer=signer)

    assert raced
    view = archive.get(f"/v1/exports/{created.id}").json()
    assert view["state"] == "done"
    assert len([key for key in archive.blobs() if key.startswith("exports/")]) == 1
    download = archive.get(f"/v1/exports/{created.id}/download")
    assert hashlib.sha256(download.content).hexdigest() == view["sha256"]
    assert verify_bundle(download.content).ok


def test_an_export_verifies_on_every_database_and_store(backed_archive: Archive) -> None:
    archive = backed_archive
    ids = [archive.frame_id(image_bytes(seed=i), camera_id="site:gate-1") for i in range(2)]
    archive.get(f"/v1/frames/{ids[0]}/stored", key="investigator").raise_for_status()
    view, bundle = export(archive, {"camera_id": "site:gate-1", "include": ["stored"]})
    assert view["frames"] == 2
    verdict = verify_bundle(bundle, public_key_pem=archive_key_pem(archive))
    assert verdict.ok, verdict.problems
    with zipfile.ZipFile(io.BytesIO(bundle)) as zipped:
        names = zipped.namelist()
        manifest = json.loads(zipped.read("manifest.json"))
        trail = [json.loads(line) for line in zipped.read("audit-trail.jsonl").splitlines()]
    assert all(":" not in name for name in names)  # opens on Windows too
    assert {e["camera_id"] for e in manifest["files"] if e["role"] == "stored"} == {"site:gate-1"}
    assert (trail[0]["frame_id"], trail[0]["action"]) == (ids[0], "frame.stored.read")


def test_a_bundle_past_its_time_is_deleted_and_its_download_says_so(
    archive_factory: Any, settings_with: Callable[..., Settings]
) -> None:
    archive: Archive = archive_factory(settings_with(export_ttl_days=7))
    frame_id = frame_at(archive, 1, seed=1)
    view, _ = export(archive, {"frame_ids": [frame_id]})
    finished_at = datetime.fromisoformat(view["finished_at"])
    assert datetime.fromisoformat(view["expires_at"]) == finished_at + timedelta(days=7)
    with unit_of_work(archive.runtime.session_factory) as session:
        row = lifecycle_repository.get_export(session, view["id"])
        assert row is not None and row.blob_key is not None
        key = row.blob_key
    store, runtime = archive.runtime.store, archive.runtime

    def run(days_later: float, dry_run: bool = False) -> list[str]:
        report = sweep(
            session_factory=runtime.session_factory,
            store=store,
            settings=runtime.settings,
            dry_run=dry_run,
            now=finished_at + timedelta(days=days_later),
        )
        return [gone.export_id for gone in report.exports]

    assert run(6.9) == []  # inside its week
    assert run(7.1, dry_run=True) == [view["id"]] and store.exists(key)  # listed, kept
    assert run(7.1) == [view["id"]]
    assert not store.exists(key)
    assert run(8) == []  # once

    after = archive.get(f"/v1/exports/{view['id']}", key="investigator").json()
    assert (after["state"], after["expires_at"]) == ("expired", None)
    assert after["sha256"] == view["sha256"]  # the record of what was handed out stays
    gone = archive.get(view["links"]["download"], key="investigator")
    assert gone.status_code == 410
    error = gone.json()["error"]
    assert error["code"] == "export_expired"
    assert "CCTV_EXPORT_TTL_DAYS" in error["message"] and len(error["message"]) < 300
    audit = archive.get("/v1/audit", key="admin", params={"action": "export.expire"}).json()
    assert [e["action"] for e in audit["items"] if view["id"] in e["detail"]] == ["export.expire"]
    # Only the bundle went: the frame stays, and a new export of it can be made.
    assert archive.get(f"/v1/frames/{frame_id}", key="investigator").status_code == 200
    assert export(archive, {"frame_ids": [frame_id]})[0]["state"] == "done"


def test_bundles_are_kept_forever_when_the_time_is_zero(
    archive_factory: Any, settings_with: Callable[..., Settings]
) -> None:
    archive: Archive = archive_factory(settings_with(export_ttl_days=0))
    view, _ = export(archive, {"frame_ids": [frame_at(archive, 1, seed=2)]})
    assert view["expires_at"] is None
    runtime = archive.runtime
    report = sweep(
        session_factory=runtime.session_factory,
        store=runtime.store,
        settings=runtime.settings,
        now=datetime.now(UTC) + timedelta(days=36_500),
    )
    assert report.exports == []
    assert archive.get(view["links"]["download"], key="investigator").status_code == 200
