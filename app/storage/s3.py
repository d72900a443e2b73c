"""Blobs in any S3 API (AWS S3, MinIO, Ceph RGW) through boto3.

The same `BlobStore` interface as the local-folder store: `put` never overwrites, `get` returns
exactly the bytes that were put (SHA-256 checked), and every way the endpoint can fail comes out
as a domain error from app/errors.py, so the API answers 503 instead of 500.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import SecretStr

from app.config import Settings
from app.errors import BlobExists, BlobNotFound, StorageUnavailable
from app.storage.base import PROBE_BYTES, check_key

# Object metadata key holding the hex SHA-256 of the body. S3 APIs that ignore the flexible
# checksum headers (older MinIO, Ceph) still keep user metadata, so reads can always verify.
SHA256_METADATA = "sha256"

_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_PRECONDITION = {"412", "PreconditionFailed", "409", "ConditionalRequestConflict"}
_UNSUPPORTED = {"501", "NotImplemented"}


def _secret(value: SecretStr | None) -> str | None:
    """Settings hold the secret as pydantic SecretStr; boto3 wants a plain string."""
    return None if value is None else value.get_secret_value()


def make_s3_client(
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    connect_timeout: float = 3.0,
    read_timeout: float = 30.0,
    max_attempts: int = 3,
) -> BaseClient:
    """The one place an S3 client is made.

    Credentials left as None fall through to boto3's own chain (AWS_* environment variables,
    shared config, instance roles), so production keys need not live in CCTV_ settings.
    """
    config = Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        # "standard" retries transient errors (5xx, throttling, dropped connections) with backoff;
        # the timeouts above bound each attempt so a dead endpoint costs seconds, not minutes.
        retries={"max_attempts": max_attempts, "mode": "standard"},
        # MinIO and most self-hosted S3 APIs serve buckets by path, not by virtual host.
        s3={"addressing_style": "path" if endpoint_url else "auto"},
    )
    # A Session per client: sessions are not thread-safe, the clients they make are.
    session = boto3.session.Session(
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        region_name=region or os.environ.get("AWS_REGION") or "us-east-1",
    )
    return session.client("s3", endpoint_url=endpoint_url or None, config=config)


def client_from_settings(settings: Settings | None) -> BaseClient:
    """Build the client from CCTV_S3_* settings (anything unset falls back to boto3's own
    configuration: AWS_* variables, instance roles)."""
    if settings is None:
        return make_s3_client()
    return make_s3_client(
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=_secret(settings.s3_secret_access_key),
    )


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


class S3Store:
    """A BlobStore on one bucket, optionally under a key prefix ("s3://bucket/prefix")."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: BaseClient,
        create_bucket: bool = False,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._client = client
        self._create_bucket = create_bucket
        self._bucket_ready = not create_bucket
        self._lock = threading.Lock()
        # Flipped off the first time the endpoint says it does not implement If-None-Match.
        self._conditional_put = True

    @classmethod
    def from_url(cls, url: str, settings: Settings | None = None) -> S3Store:
        """`s3://bucket/optional/prefix`, client options from settings (or the environment)."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"not an s3://bucket[/prefix] URL: {url!r}")
        return cls(
            parts.netloc,
            parts.path,
            client=client_from_settings(settings),
            create_bucket=settings is not None and settings.s3_create_bucket,
        )

    def __repr__(self) -> str:
        return f"S3Store(s3://{self.bucket}/{self.prefix})"

    # -- BlobStore ---------------------------------------------------------------------------

    def put(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        """Write once. Raises BlobExists if the key is already there; never overwrites."""
        name = self._name(key)
        self._ensure_bucket()
        digest = hashlib.sha256(data).digest()
        args: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": name,
            "Body": data,
            "ContentType": content_type,
            # S3 recomputes this, rejects the upload if a byte changed in transit, and keeps it
            # with the object so reads (ChecksumMode) are checked end to end as well.
            "ChecksumAlgorithm": "SHA256",
            "ChecksumSHA256": base64.b64encode(digest).decode(),
            "Metadata": {SHA256_METADATA: digest.hex()},
        }
        # Cheap early refusal, and the only guard on endpoints without conditional writes.
        if self.exists(key):
            raise BlobExists(key)
        try:
            if self._conditional_put:
                # Closes the race between the check above and the write: S3 refuses atomically.
                self._client.put_object(**args, IfNoneMatch="*")
            else:
                self._client.put_object(**args)
        except ClientError as exc:
            code = _error_code(exc)
            if code in _PRECONDITION or _status(exc) in (409, 412):
                raise BlobExists(key) from exc
            if self._conditional_put and (code in _UNSUPPORTED or _status(exc) == 501):
                self._conditional_put = False
                self._call(self._client.put_object, **args)
                return
            raise self._unavailable("put", exc) from exc
        except BotoCoreError as exc:
            raise self._unavailable("put", exc) from exc

    def get(self, key: str) -> bytes:
        """The stored bytes, verified against the SHA-256 recorded at write time."""
        name = self._name(key)
        self._ensure_bucket()
        try:
            # ChecksumMode makes botocore check the flexible checksum while reading the body.
            obj = self._client.get_object(Bucket=self.bucket, Key=name, ChecksumMode="ENABLED")
            data = obj["Body"].read()
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND:
                raise BlobNotFound(key) from exc
            raise self._unavailable("get", exc) from exc
        except BotoCoreError as exc:  # includes a checksum that did not match the body
            raise self._unavailable("get", exc) from exc
        expected = obj.get("Metadata", {}).get(SHA256_METADATA)
        if expected is not None and hashlib.sha256(data).hexdigest() != expected:
            raise StorageUnavailable(f"blob {key!r} failed its SHA-256 check")
        return data

    def delete(self, key: str) -> None:
        """Remove the blob; deleting a missing key is not an error."""
        self._ensure_bucket()
        self._call(self._client.delete_object, Bucket=self.bucket, Key=self._name(key))

    def exists(self, key: str) -> bool:
        name = self._name(key)
        self._ensure_bucket()
        try:
            self._client.head_object(Bucket=self.bucket, Key=name)
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND:
                return False
            raise self._unavailable("head", exc) from exc
        except BotoCoreError as exc:
            raise self._unavailable("head", exc) from exc
        return True

    def modified_at(self, key: str) -> float:
        """When the blob was written (Unix time); `verify` leaves young orphans alone."""
        name = self._name(key)
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=name)
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND:
                raise BlobNotFound(key) from exc
            raise self._unavailable("head", exc) from exc
        except BotoCoreError as exc:
            raise self._unavailable("head", exc) from exc
        return float(head["LastModified"].timestamp())

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every key under `prefix` (relative to the store's own prefix), in S3's sorted order."""
        self._ensure_bucket()
        paginator = self._client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix)
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"][len(self.prefix) :]
        except (ClientError, BotoCoreError) as exc:
            raise self._unavailable("list", exc) from exc

    def check(self) -> None:
        """Raise StorageUnavailable unless a small object can be written (readiness probe)."""
        self._ensure_bucket()
        probe = self._name(f"readyz-probe-{uuid.uuid4().hex}")
        self._call(self._client.put_object, Bucket=self.bucket, Key=probe, Body=PROBE_BYTES)
        self._call(self._client.delete_object, Bucket=self.bucket, Key=probe)

    def free_bytes(self) -> int | None:
        return None  # a bucket has no free space to report

    # -- internals ---------------------------------------------------------------------------

    def _name(self, key: str) -> str:
        # The same key rules as the local store: a bad key never addresses outside the prefix.
        return self.prefix + check_key(key)

    def _ensure_bucket(self) -> None:
        """Create the bucket on first use when configured to; retried on the next call if down."""
        if self._bucket_ready:
            return
        with self._lock:
            if self._bucket_ready:
                return
            try:
                self._client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if _error_code(exc) not in _NOT_FOUND | {"NoSuchBucket"}:
                    raise self._unavailable("head bucket", exc) from exc
                self._make_bucket()
            except BotoCoreError as exc:
                raise self._unavailable("head bucket", exc) from exc
            self._bucket_ready = True

    def _make_bucket(self) -> None:
        region = self._client.meta.region_name
        args: dict[str, Any] = {"Bucket": self.bucket}
        if region and region != "us-east-1":  # us-east-1 rejects an explicit constraint
            args["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self._client.create_bucket(**args)
        except ClientError as exc:
            # Another replica made it first: that is the outcome we wanted.
            if _error_code(exc) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise self._unavailable("create bucket", exc) from exc
        except BotoCoreError as exc:
            raise self._unavailable("create bucket", exc) from exc

    def _call(self, method: Any, **kwargs: Any) -> Any:
        try:
            return method(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise self._unavailable(method.__name__, exc) from exc

    def _unavailable(self, action: str, exc: Exception) -> StorageUnavailable:
        detail = _error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
        return StorageUnavailable(f"S3 {action} on bucket {self.bucket!r} failed: {detail}")
