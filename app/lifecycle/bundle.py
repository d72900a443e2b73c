"""The evidence bundle: a ZIP of files, `manifest.json` (each file's SHA-256, role and source),
`manifest.sig` (Ed25519 over the manifest's exact bytes, base64) and the public key. Building it
and verifying it need no database, so a recipient can verify offline (`cctv-archive export
verify`)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from app.lifecycle.signing import (
    Signer,
    fingerprint,
    load_public_key,
    public_pem,
    verify_signature,
)

FORMAT = "cctv-archive-evidence/1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
PUBLIC_KEY = "signing-key.pem"
BUNDLE_FILES = {MANIFEST, SIGNATURE, PUBLIC_KEY}


class Role(StrEnum):
    original = "original"  # the bytes the camera uploaded
    stored = "stored"  # the archived reduced-resolution frame
    ai_generated = "ai-generated-derivative"  # restored by the neural network
    interpolated = "interpolated"  # bicubic upscaling of the stored frame
    audit_trail = "audit-trail"
    c2pa_trust_anchor = "c2pa-trust-anchor"  # the CA of the restorations' C2PA signer


@dataclass
class BundleWriter:
    """Files added one by one, then `finish` writes the manifest, signs it and closes the ZIP."""

    signer: Signer
    header: dict[str, Any]
    out: io.BytesIO = field(default_factory=io.BytesIO)
    entries: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._zip = zipfile.ZipFile(self.out, "w", compression=zipfile.ZIP_DEFLATED)

    def add(self, path: str, data: bytes, role: Role, **source: Any) -> None:
        self._zip.writestr(path, data)
        entry = {"path": path, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        self.entries.append(entry | {"role": role.value} | source)

    def finish(self) -> bytes:
        manifest = self.header | {
            "format": FORMAT,
            "signature": {
                "algorithm": "Ed25519",
                "file": SIGNATURE,
                "public_key_file": PUBLIC_KEY,
                "public_key_sha256": fingerprint(self.signer.public_key),
            },
            "files": self.entries,
        }
        data = json.dumps(manifest, indent=2, sort_keys=True).encode()
        self._zip.writestr(MANIFEST, data)
        self._zip.writestr(SIGNATURE, base64.b64encode(self.signer.sign(data)) + b"\n")
        self._zip.writestr(PUBLIC_KEY, public_pem(self.signer.public_key))
        self._zip.close()
        return self.out.getvalue()


@dataclass
class Verdict:
    files_checked: int = 0
    key_fingerprint: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_bundle(data: bytes, *, public_key_pem: bytes | None = None) -> Verdict:
    """Check the signature over the manifest and every file's hash; each problem names the file.

    With `public_key_pem` (the archive's key, from /v1/signing-key) the signature must be by
    that key; without it, by the key in the bundle, which proves the bundle unchanged since it
    was signed but not who signed it (compare the fingerprint).
    """
    verdict = Verdict()
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        verdict.problems.append("not a ZIP file")
        return verdict
    with archive:
        names = set(archive.namelist())
        for required in (MANIFEST, SIGNATURE, PUBLIC_KEY):
            if required not in names:
                verdict.problems.append(f"{required}: missing from the bundle")
        if not verdict.ok:
            return verdict
        manifest_bytes = archive.read(MANIFEST)
        _check_signature(verdict, archive, manifest_bytes, public_key_pem)
        try:
            manifest = json.loads(manifest_bytes)
            files = {entry["path"]: entry for entry in manifest["files"]}
        except (ValueError, KeyError, TypeError):
            verdict.problems.append(f"{MANIFEST}: not a manifest this tool can read")
            return verdict
        for path, entry in files.items():
            if path not in names:
                verdict.problems.append(f"{path}: listed in the manifest, missing from the bundle")
                continue
            content = archive.read(path)
            if hashlib.sha256(content).hexdigest() != entry.get("sha256"):
                verdict.problems.append(f"{path}: SHA-256 does not match the manifest (altered)")
            verdict.files_checked += 1
        for path in sorted(names - set(files) - BUNDLE_FILES):
            verdict.problems.append(f"{path}: in the bundle but not in the manifest")
    return verdict


def _check_signature(
    verdict: Verdict,
    archive: zipfile.ZipFile,
    manifest: bytes,
    public_key_pem: bytes | None,
) -> None:
    try:
        bundled = load_public_key(archive.read(PUBLIC_KEY))
    except ValueError:
        verdict.problems.append(f"{PUBLIC_KEY}: not an Ed25519 public key")
        return
    key = bundled
    if public_key_pem is not None:
        key = load_public_key(public_key_pem)
        if fingerprint(key) != fingerprint(bundled):
            verdict.problems.append(
                f"{PUBLIC_KEY}: not the archive's key (fingerprint {fingerprint(bundled)[:16]}"
                f", expected {fingerprint(key)[:16]})"
            )
    verdict.key_fingerprint = fingerprint(key)
    try:
        signature = base64.b64decode(archive.read(SIGNATURE).strip(), validate=True)
    except ValueError:
        verdict.problems.append(f"{SIGNATURE}: not base64")
        return
    if not verify_signature(key, signature, manifest):
        verdict.problems.append(
            f"{SIGNATURE}: the signature does not match {MANIFEST} (manifest altered, or signed "
            "by another key)"
        )
