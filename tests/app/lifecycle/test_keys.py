"""The archive's keys: the Ed25519 export key and the C2PA signing certificate, made once."""

from __future__ import annotations

import stat
from pathlib import Path

from cryptography import x509

from app.lifecycle.credentials import ContentCredentials
from app.lifecycle.signing import Signer, fingerprint


def test_the_export_key_is_made_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing-key.pem"
    first = Signer.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = Signer.load_or_create(path)
    assert fingerprint(first.public_key) == fingerprint(again.public_key)
    signature = first.sign(b"manifest")
    again.public_key.verify(signature, b"manifest")  # raises if the key changed


def test_the_c2pa_certificate_is_issued_by_a_ca_whose_key_is_not_kept(tmp_path: Path) -> None:
    path = tmp_path / "c2pa-credentials.pem"
    credentials = ContentCredentials.load_or_create(path)
    assert ContentCredentials.load_or_create(path) == credentials
    signer, ca = x509.load_pem_x509_certificates(credentials.chain_pem)
    assert x509.load_pem_x509_certificates(credentials.trust_anchor_pem) == [ca]
    signer.verify_directly_issued_by(ca)  # raises unless the CA signed it
    assert signer.subject != signer.issuer  # C2PA refuses self-signed signers
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca and constraints.path_length == 0
    assert (
        path.read_bytes().count(b"-----BEGIN PRIVATE KEY-----") == 1
    )  # the signer's; the CA's is gone
