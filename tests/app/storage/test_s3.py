"""S3Store against a real S3 endpoint over HTTP (moto's server), as the service talks to MinIO."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator

import pytest
from botocore.awsrequest import AWSResponse

from app.config import Settings
from app.errors import BlobExists, StorageUnavailable
from app.storage.s3 import S3Store, make_s3_client
from tests import services


@pytest.fixture(scope="module")
def moto() -> Iterator[services.MotoServer]:
    with services.moto_server() as server:
        yield server


def _settings(moto: services.MotoServer, **extra: object) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        s3_endpoint_url=moto.endpoint_url,
        s3_region=moto.region,
        s3_access_key_id=moto.access_key_id,
        s3_secret_access_key=moto.secret_access_key,
        s3_create_bucket=True,
        **extra,
    )


@pytest.fixture
def store(moto: services.MotoServer) -> S3Store:
    return S3Store.from_url(f"s3://{services.unique_bucket()}/frames", _settings(moto))


def test_put_records_sha256_checksum_and_metadata(store: S3Store) -> None:
    data = b"\x00\x01 frame bytes \xff"
    store.put("cam-1/a.webp", data, content_type="image/webp")

    head = store._client.head_object(
        Bucket=store.bucket, Key="frames/cam-1/a.webp", ChecksumMode="ENABLED"
    )
    assert head["Metadata"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert head["ChecksumSHA256"]  # the server verified the upload against our digest
    assert head["ContentType"] == "image/webp"
    assert store.get("cam-1/a.webp") == data


def test_put_refuses_to_overwrite_and_keeps_the_original(store: S3Store) -> None:
    store.put("k", b"first")
    with pytest.raises(BlobExists):
        store.put("k", b"second")
    assert store.get("k") == b"first"


def test_conditional_write_refuses_even_when_the_existence_check_races(
    store: S3Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.put("k", b"first")
    # Another writer got in between our check and our write: only If-None-Match can stop it.
    monkeypatch.setattr(store, "exists", lambda key: False)
    with pytest.raises(BlobExists):
        store.put("k", b"second")
    assert store.get("k") == b"first"


def test_endpoint_without_conditional_writes_falls_back_to_the_existence_check(
    store: S3Store,
) -> None:
    def not_implemented(request: object, **_: object) -> AWSResponse | None:
        headers = getattr(request, "headers", {})
        if "If-None-Match" in headers:
            body = b"<Error><Code>NotImplemented</Code><Message>no</Message></Error>"
            return AWSResponse(request.url, 501, {}, _Raw(body))  # type: ignore[attr-defined]
        return None

    store._client.meta.events.register("before-send.s3.PutObject", not_implemented)
    try:
        store.put("k", b"first")
        assert store.get("k") == b"first"
        with pytest.raises(BlobExists):
            store.put("k", b"second")
        assert store.get("k") == b"first"
    finally:
        store._client.meta.events.unregister("before-send.s3.PutObject", not_implemented)


class _Raw:
    """The urllib3-like body AWSResponse reads from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, *_: object, **__: object) -> Iterator[bytes]:
        yield self._body


def test_get_refuses_bytes_that_do_not_match_their_sha256(store: S3Store) -> None:
    store.put("k", b"original")
    # Corrupt the object behind the store's back, keeping the recorded digest.
    store._client.put_object(
        Bucket=store.bucket,
        Key="frames/k",
        Body=b"tampered",
        Metadata={"sha256": hashlib.sha256(b"original").hexdigest()},
    )
    with pytest.raises(StorageUnavailable, match="SHA-256"):
        store.get("k")


def test_bucket_is_created_when_missing_if_configured(moto: services.MotoServer) -> None:
    bucket = services.unique_bucket()
    store = S3Store.from_url(f"s3://{bucket}", _settings(moto))
    store.check()
    store.put("k", b"x")
    assert store.get("k") == b"x"


def test_missing_bucket_is_unavailable_when_creation_is_off(moto: services.MotoServer) -> None:
    settings = _settings(moto).model_copy(update={"s3_create_bucket": False})
    store = S3Store.from_url(f"s3://{services.unique_bucket()}", settings)
    with pytest.raises(StorageUnavailable):
        store.check()


def test_keys_stay_inside_the_store_prefix(moto: services.MotoServer) -> None:
    bucket = services.unique_bucket()
    a = S3Store.from_url(f"s3://{bucket}/a", _settings(moto))
    b = S3Store.from_url(f"s3://{bucket}/b", _settings(moto))
    a.put("cam/1", b"1")
    b.put("cam/2", b"2")
    assert list(a.keys()) == ["cam/1"]
    assert list(b.keys("cam/")) == ["cam/2"]


@pytest.mark.parametrize("key", ["", "/abs", "../up", "a/../../b", "a\\b"])
def test_keys_that_could_escape_the_prefix_are_refused(store: S3Store, key: str) -> None:
    with pytest.raises(ValueError):
        store.put(key, b"x")


def test_client_has_endpoint_region_timeouts_and_retries() -> None:
    client = make_s3_client(
        endpoint_url="http://127.0.0.1:9", region="eu-west-1", connect_timeout=1, read_timeout=2
    )
    assert client.meta.endpoint_url == "http://127.0.0.1:9"
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.config.connect_timeout == 1
    assert client.meta.config.read_timeout == 2
    assert client.meta.config.retries["mode"] == "standard"


def test_credentials_fall_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-env")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-from-env")
    store = S3Store.from_url(
        "s3://bucket",
        Settings(_env_file=None, s3_endpoint_url="http://127.0.0.1:9"),  # type: ignore[call-arg]
    )
    credentials = store._client._request_signer._credentials  # what every request is signed with
    assert credentials.access_key == "from-env"


def test_stopped_endpoint_is_storage_unavailable_quickly() -> None:
    with services.moto_server() as moto:
        store = S3Store.from_url(f"s3://{services.unique_bucket()}", _settings(moto))
        store.put("k", b"x")
        moto.stop()
        started = time.monotonic()
        with pytest.raises(StorageUnavailable):
            store.get("k")
        with pytest.raises(StorageUnavailable):
            store.put("k2", b"y")
        with pytest.raises(StorageUnavailable):
            store.check()
        assert time.monotonic() - started < 30
        moto.start()  # the context manager stops it again
