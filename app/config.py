"""Configuration: one Settings class, every field an environment variable with the CCTV_ prefix."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ImageFormat = Literal["jpeg", "png", "webp", "bmp", "avif"]
ALL_FORMATS: tuple[ImageFormat, ...] = ("jpeg", "png", "webp", "bmp", "avif")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CCTV_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("data")
    # Empty: a SQLite file and a blob folder inside data_dir (the embedded default).
    database_url: str = ""
    storage_url: str = ""

    # Ingest: HR_SIZE:SCALE:CODEC[:draft] or a named profile (models.Profile.parse); the study kept
    # 400x400 frames at x2.
    profile: str = "400:2:webp-lossless"
    max_upload_bytes: int = Field(25 * 1024 * 1024, gt=0)
    max_pixels: int = Field(40_000_000, gt=0)  # an 8K frame is 33 MP
    # The whole request body must arrive within this (408 after), so a stalled client frees
    # its worker.
    body_timeout_s: float = Field(60.0, gt=0)
    # Uploads decoded at once; each holds up to ~max_pixels x 3 bytes plus working copies, so
    # this bounds ingest memory (README, Configuration).
    max_concurrent_decodes: int = Field(2, ge=1, le=64)
    # Server processes (`serve --workers`): each has its own GIL, model, restore pool and
    # decode slots, all on one archive; one suits 2 cores (benchmarks/RESULTS.md).
    web_workers: int = Field(1, ge=1, le=64)
    # WebP lossless encoder effort, `cwebp -z` 0-9: bytes against ingest time, never the pixels
    # (models/degradation.py LOSSLESS_LEVELS; measured in benchmarks/RESULTS.md).
    lossless_level: int = Field(1, ge=0, le=9)  # models.degradation.DEFAULT_LOSSLESS_LEVEL
    allowed_formats: Annotated[list[ImageFormat], NoDecode] = list(ALL_FORMATS)
    # Share of frames per camera whose canonical HR frame is kept to measure restoration quality.
    audit_sample_rate: float = Field(0.01, ge=0.0, le=1.0)
    # /readyz is 503 when the blob folder's disk has less free space than this.
    min_free_bytes: int = Field(1024**3, ge=0)

    # Restorations: a shipped model name (models/weights/NAME.safetensors) or a .safetensors path;
    # empty: the shipped model trained for `profile` (models.registry).
    model: str = ""
    model_device: str | None = None  # None: CUDA when present, else CPU
    restore_backend: Literal["inprocess", "celery"] = "inprocess"
    restore_wait_s: float = Field(10.0, ge=0.0, le=300.0)
    restore_cache_ttl_s: int = Field(7 * 24 * 3600, gt=0)
    restore_cache_sweep_s: float = Field(300.0, gt=0)
    restore_workers: int = Field(2, ge=1, le=64)
    restore_queue_size: int = Field(64, ge=1)
    restore_batch_size: int = Field(8, ge=1, le=256)
    # CPU engine (issue 13): auto serves OpenVINO (the `int8` extra) when it is installed and
    # agrees with torch: where the CPU computes bf16 natively, bf16 or int8, whichever it timed
    # faster at start-up (models.engines.pick); elsewhere int8; otherwise torch (exact, always
    # there). On CUDA always torch fp16.
    restore_engine: Literal["auto", "torch", "openvino-bf16", "openvino-int8", "onnx-int8"] = "auto"
    # Passes per restored frame (geometric self-ensemble, models.restorer). 1: the network alone,
    # which meets every quality target since the default was distilled from its own 8-view
    # ensemble. 2 = the frame and its mirror image, averaged: +0.06 dB on cctv/val, +0.05 dB on
    # cctv/val-night for twice the compute (model card); worth it on a GPU or a CPU with time to
    # spare. 4 and 8 gain a little more for 2x and 4x again.
    restore_ensemble: int = 1  # 1, 2, 4 or 8; models.restorer.SERVED_ENSEMBLE
    # Frames the int8 engine is calibrated on, once per weights (then cached in ~/.cache);
    # empty: ../shared/data/cctv/train beside the repository.
    restore_calibration_dir: Path | None = None
    restore_job_max_frames: int = Field(10_000, ge=1)
    # A queued or running job without progress this long that no worker is known to hold is
    # resumed by housekeeping (on Celery, after the visibility timeout at the earliest).
    restore_stale_job_s: float = Field(60.0, gt=0)

    # Lifecycle (issue 12): archive-wide defaults a camera's policy may override.
    # Days a frame is kept after its capture time; 0 keeps frames forever.
    retention_days: int = Field(0, ge=0, le=36_500)
    # Hours the upload's own bytes are kept beside the stored frame; 0 keeps no originals.
    originals_hours: int = Field(0, ge=0, le=876_000)
    retention_batch_size: int = Field(500, ge=1, le=10_000)  # frames deleted per transaction
    export_max_frames: int = Field(1000, ge=1, le=100_000)
    # Days a finished export's bundle stays downloadable; then the retention sweep deletes it (the
    # export's record and audit trail stay; a new export of held frames can be made). 0: forever.
    export_ttl_days: int = Field(30, ge=0, le=36_500)
    # Ed25519 key that signs export manifests, made on first start; empty: data_dir/signing-key.pem
    # (give every API process the same file when several serve).
    signing_key_path: Path | None = None

    # Scale-out (issue 5): Celery on Redis, S3 blobs.
    broker_url: str = "redis://127.0.0.1:6379/0"
    result_backend_url: str | None = None
    restore_queue: str = "restore"
    restore_time_limit_s: int = Field(1800, gt=0)
    # Redis redelivers an unacknowledged job after this: a worker that dies whole (SIGKILL, host
    # lost) delays its job by up to this long (the job view's waited_s shows it).
    restore_visibility_timeout_s: int = Field(3600, gt=0)
    # On SIGTERM a Celery worker lets running jobs finish this long, then hands them back.
    restore_shutdown_grace_s: float = Field(60.0, ge=0)
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_create_bucket: bool = False

    # Web pages (issue 14): the sign-in cookie is signed with session_secret; unset, a random
    # secret per process (sign-ins end when it restarts; set one when several processes serve).
    session_secret: SecretStr | None = None
    session_max_age_s: int = Field(8 * 3600, ge=60)
    # Secure cookies travel over HTTPS only (browsers also accept them from localhost); false
    # only for plain HTTP on a trusted network.
    session_cookie_secure: bool = True
    # What a GB of storage costs per month, for the dashboard's "money saved".
    storage_price_per_gb_month: float = Field(0.023, ge=0)
    storage_price_currency: str = Field("USD", min_length=1, max_length=8)
    log_format: Literal["text", "json"] = "text"  # json: one JSON object per line
    # A Celery pool process serves /metrics on this port plus its index (0: none).
    worker_metrics_port: int = Field(9808, ge=0, le=65535)

    @field_validator("allowed_formats", mode="before")
    @classmethod
    def _split_formats(cls, value: object) -> object:
        if isinstance(value, str):  # CCTV_ALLOWED_FORMATS=jpeg,png
            return [part.strip().lower() for part in value.split(",") if part.strip()]
        return value

    @field_validator("restore_ensemble")
    @classmethod
    def _check_ensemble(cls, value: int) -> int:
        if value not in (1, 2, 4, 8):
            raise ValueError(f"passes per frame must be 1, 2, 4 or 8, not {value}")
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if not self.allowed_formats:
            raise ValueError("allowed_formats must name at least one format")
        if self.restore_visibility_timeout_s <= self.restore_time_limit_s:
            # Redis redelivers an unacknowledged job after the visibility timeout: a job still
            # running then would run twice at once.
            raise ValueError(
                "restore_visibility_timeout_s must be longer than restore_time_limit_s"
            )
        secret = self.s3_secret_access_key
        if (
            self.environment == "production"
            and secret
            and secret.get_secret_value() == "minioadmin"
        ):
            raise ValueError("refusing MinIO's well-known default secret key in production")
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'archive.db').resolve()}"
        if not self.storage_url:
            self.storage_url = f"file://{(self.data_dir / 'blobs').resolve()}"
        if self.signing_key_path is None:
            self.signing_key_path = (self.data_dir / "signing-key.pem").resolve()
        return self


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once from the environment (and .env)."""
    return Settings()
