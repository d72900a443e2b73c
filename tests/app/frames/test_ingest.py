"""POST /v1/frames: the frame's life starts here, and bad input leaves nothing behind."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib

import pytest
from PIL import Image

from app.config import Settings
from tests.app.conftest import Archive
from tests.app.images import decode, image_bytes

# -- accepted ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP"])
def test_upload_stores_the_frame_downsampled_by_the_profile(archive: Archive, fmt: str) -> None:
    data = image_bytes(fmt, width=640, height=480)
    response = archive.upload(data, camera_id="gate-2", tags="night,entrance")

    assert response.status_code == 201
    frame = response.json()
    assert response.headers["location"] == f"/v1/frames/{frame['id']}"
    assert frame["camera_id"] == "gate-2"
    assert frame["captured_at"] == "2024-05-01T12:00:00Z"
    assert frame["tags"] == ["night", "entrance"]
    assert frame["original"] == {
        "format": fmt.lower(),
        "width": 640,
        "height": 480,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "kept": False,  # no originals window by default: only the stored frame is kept
    }
    # The tests' profile: canonical 400x400 HR, x2 down, PNG.
    assert frame["stored"]["width"] == frame["stored"]["height"] == 200
    assert frame["stored"]["codec"] == "png"
    assert frame["degradation_id"] == "bicubic-aa-x2/png/v1"
    stored = archive.runtime.store.get(f"frames/{frame['id'][:2]}/{frame['id']}.png")
    assert frame["stored"]["bytes"] == len(stored)
    assert frame["stored"]["sha256"] == hashlib.sha256(stored).hexdigest()
    assert decode(stored).size == (200, 200)


def test_default_profile_stores_webp_lossless(archive_factory, settings_with) -> None:
    settings = settings_with(profile=Settings.model_fields["profile"].default)
    archive = archive_factory(settings)
    frame = archive.upload(image_bytes("JPEG", width=64, height=48)).json()
    assert frame["stored"]["codec"] == "webp-lossless"
    assert frame["stored"]["media_type"] == "image/webp"
    stored = archive.get(f"/v1/frames/{frame['id']}/stored")
    assert stored.headers["content-type"] == "image/webp"
    assert decode(stored.content).size == (200, 200)


def test_stored_pixels_are_exactly_the_profile_output(archive: Archive) -> None:
    data = image_bytes("PNG", width=300, height=200)
    frame_id = archive.frame_id(data)
    stored = archive.get(f"/v1/frames/{frame_id}/stored").content
    expected = archive.runtime.profile.store(Image.open(io.BytesIO(data)))
    assert stored == expected.data


def test_captured_at_keeps_its_instant_in_utc(archive: Archive) -> None:
    response = archive.upload(captured_at="2024-05-01T14:30:00+02:00")
    assert response.json()["captured_at"] == "2024-05-01T12:30:00Z"


def test_same_camera_and_bytes_again_returns_the_existing_frame(archive: Archive) -> None:
    data = image_bytes(seed=7)
    first = archive.upload(data)
    blobs = archive.blobs()

    again = archive.upload(data, captured_at="2024-06-01T00:00:00Z")

    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json()
    assert archive.count("frames") == 1
    assert archive.blobs() == blobs


def test_same_bytes_from_another_camera_is_another_frame(archive: Archive) -> None:
    data = image_bytes(seed=8)
    assert archive.upload(data, camera_id="cam-1").status_code == 201
    assert archive.upload(data, camera_id="cam-2").status_code == 201
    assert archive.count("frames") == 2


def test_an_upload_that_loses_a_race_keeps_the_winners_frame_and_no_extra_blob(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.frames import service

    data = image_bytes(seed=5)
    first = archive.upload(data).json()
    blobs = archive.blobs()
    real, looks = service._existing, []

    def late(*args: object) -> object:
        # The first look finds nothing, as if the same upload in flight had not yet committed.
        looks.append(1)
        return None if len(looks) == 1 else real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "_existing", late)
    again = archive.upload(data)

    assert again.status_code == 200 and again.json()["id"] == first["id"]
    assert archive.count("frames") == 1
    assert archive.blobs() == blobs


def test_idempotency_key_repeat_returns_the_existing_frame(archive: Archive) -> None:
    headers = {"Idempotency-Key": "nvr-7-upload-0001"}
    first = archive.upload(image_bytes(seed=1), headers=headers)
    again = archive.upload(image_bytes(seed=1), headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert archive.count("frames") == 1


def test_idempotency_key_reused_for_other_bytes_is_a_conflict(archive: Archive) -> None:
    headers = {"Idempotency-Key": "nvr-7-upload-0002"}
    archive.upload(image_bytes(seed=1), headers=headers)
    blobs = archive.blobs()
    response = archive.upload(image_bytes(seed=2), headers=headers)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_conflict"
    assert archive.count("frames") == 1
    assert archive.blobs() == blobs


def test_audit_sample_keeps_the_canonical_hr_reference(archive_factory, settings_with) -> None:
    archive = archive_factory(settings_with(audit_sample_rate=1.0))
    data = image_bytes("JPEG", width=500, height=300)

    frame = archive.upload(data).json()

    assert frame["audit_reference"] is True
    reference = decode(archive.runtime.store.get(f"references/{frame['id'][:2]}/{frame['id']}.png"))
    assert reference.size == (400, 400)
    expected = archive.runtime.profile.canonicalise(Image.open(io.BytesIO(data)))
    assert reference.tobytes() == expected.tobytes()


def test_first_frame_of_a_camera_is_sampled_then_about_the_rate(
    archive_factory, settings_with
) -> None:
    archive = archive_factory(settings_with(audit_sample_rate=0.000001))
    frames = [archive.upload(image_bytes(seed=s, width=64, height=48)).json() for s in range(3)]
    assert [f["audit_reference"] for f in frames] == [True, False, False]


def test_no_reference_is_kept_when_sampling_is_off(archive: Archive) -> None:
    frame = archive.upload().json()
    assert frame["audit_reference"] is False
    assert not [key for key in archive.blobs() if key.startswith("references/")]


# -- refused, leaving no row and no blob --------------------------------------------------------


def assert_nothing_kept(archive: Archive) -> None:
    assert archive.count("frames") == 0
    assert archive.blobs() == []


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]


def test_body_over_the_upload_limit_is_413(archive_factory, settings_with) -> None:
    archive = archive_factory(settings_with(max_upload_bytes=10_000))
    data = image_bytes("BMP", width=200, height=200)  # 120 kB
    assert len(data) > 10_000

    assert_error(archive.upload(data), 413, "upload_too_large")
    assert_nothing_kept(archive)


def test_file_just_over_the_limit_inside_the_multipart_slack_is_413(
    archive_factory, settings_with
) -> None:
    data = image_bytes("PNG", width=64, height=48)
    archive = archive_factory(settings_with(max_upload_bytes=len(data) - 1))

    response = archive.upload(data)

    assert_error(response, 413, "upload_too_large")
    assert str(len(data) - 1) in response.json()["error"]["message"]
    assert_nothing_kept(archive)


def test_streamed_body_over_the_limit_is_cut_off_with_413(archive_factory, settings_with) -> None:
    archive = archive_factory(settings_with(max_upload_bytes=10_000))
    boundary = "frameboundary"
    head = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=camera_id\r\n\r\ncam-1\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=captured_at\r\n\r\n"
        "2024-05-01T12:00:00Z\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=file; filename=f.bmp\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()

    def body():  # no Content-Length: the server only learns the size while reading
        yield head
        for _ in range(200):
            yield b"\0" * 1024
        yield f"\r\n--{boundary}--\r\n".encode()

    response = archive.client.post(
        "/v1/frames",
        content=body(),
        headers=archive.as_key("operator")
        | {"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert_error(response, 413, "upload_too_large")
    assert_nothing_kept(archive)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"just some text, not an image",
        b"%PDF-1.7\n...",
        image_bytes("GIF"),
        image_bytes("TIFF"),
    ],
    ids=["empty", "text", "pdf", "gif", "tiff"],
)
def test_not_an_allowed_image_is_415(archive: Archive, data: bytes) -> None:
    assert_error(archive.upload(data), 415, "unsupported_media_type")
    assert_nothing_kept(archive)


def test_format_is_judged_by_content_not_by_name(archive: Archive) -> None:
    response = archive.client.post(
        "/v1/frames",
        files={"file": ("frame.png", b"GIF89a not really", "image/png")},
        data={"camera_id": "cam-1", "captured_at": "2024-05-01T12:00:00Z"},
        headers=archive.as_key("operator"),
    )
    assert_error(response, 415, "unsupported_media_type")


def test_format_switched_off_in_settings_is_415(archive_factory, settings_with) -> None:
    archive = archive_factory(settings_with(allowed_formats=["jpeg"]))
    response = archive.upload(image_bytes("PNG"))
    assert_error(response, 415, "unsupported_media_type")
    assert "PNG" in response.json()["error"]["message"]
    assert_nothing_kept(archive)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a huge size in its header and holds almost no data (a bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))


@pytest.mark.parametrize("side", [8_000, 50_000], ids=["over-ours", "over-pillows-too"])
def test_image_over_max_pixels_is_413_before_decoding(archive: Archive, side: int) -> None:
    data = png_header_only(side, side)  # a few hundred bytes declaring 64 MP or 2.5 GP
    response = archive.upload(data)
    assert_error(response, 413, "image_too_large")
    assert "pixel" in response.json()["error"]["message"]
    assert_nothing_kept(archive)


def test_image_just_under_max_pixels_is_accepted(archive_factory, settings_with) -> None:
    archive = archive_factory(settings_with(max_pixels=160 * 120))
    assert archive.upload(image_bytes(width=160, height=120)).status_code == 201
    assert_error(archive.upload(image_bytes(width=161, height=120)), 413, "image_too_large")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP"])
def test_truncated_image_is_422(archive: Archive, fmt: str) -> None:
    data = image_bytes(fmt, width=320, height=240)
    assert_error(archive.upload(data[: len(data) * 2 // 3]), 422, "corrupt_image")
    assert_nothing_kept(archive)


def test_png_with_a_corrupted_chunk_is_422(archive: Archive) -> None:
    data = bytearray(image_bytes("PNG", width=320, height=240))
    data[len(data) // 2] ^= 0xFF  # inside the compressed pixels: the CRC no longer matches
    assert_error(archive.upload(bytes(data)), 422, "corrupt_image")
    assert_nothing_kept(archive)


def test_garbage_after_a_valid_magic_is_422(archive: Archive) -> None:
    assert_error(archive.upload(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64), 422, "corrupt_image")
    assert_nothing_kept(archive)


@pytest.mark.parametrize(
    ("form", "missing"),
    [
        ({"captured_at": "2024-05-01T12:00:00Z"}, "camera_id"),
        ({"camera_id": "cam-1"}, "captured_at"),
    ],
)
def test_missing_fields_are_422(archive: Archive, form: dict[str, str], missing: str) -> None:
    response = archive.client.post(
        "/v1/frames",
        files={"file": ("f", image_bytes(), "application/octet-stream")},
        data=form,
        headers=archive.as_key("operator"),
    )
    assert_error(response, 422, "invalid_request")
    assert missing in response.json()["error"]["message"]
    assert_nothing_kept(archive)


def test_missing_file_is_422(archive: Archive) -> None:
    response = archive.client.post(
        "/v1/frames",
        data={"camera_id": "cam-1", "captured_at": "2024-05-01T12:00:00Z"},
        headers=archive.as_key("operator"),
    )
    assert_error(response, 422, "invalid_request")
    assert "file" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "form",
    [
        {"captured_at": "yesterday"},
        {"captured_at": "2024-05-01T12:00:00"},  # no offset: ambiguous evidence time
        {"camera_id": "../../etc/passwd"},
        {"camera_id": ""},
        {"tags": "ok,not ok"},
    ],
    ids=["time-not-iso", "time-naive", "camera-path", "camera-empty", "tag-space"],
)
def test_malformed_fields_are_422(archive: Archive, form: dict[str, str]) -> None:
    values = {"camera_id": "cam-1", "captured_at": "2024-05-01T12:00:00Z"} | form
    response = archive.client.post(
        "/v1/frames",
        files={"file": ("f", image_bytes(), "application/octet-stream")},
        data=values,
        headers=archive.as_key("operator"),
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] in ("invalid_request", "invalid_input")
    assert_nothing_kept(archive)


def test_a_failed_commit_removes_the_blob_it_wrote(
    archive: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.orm import Session

    def broken_commit(self: Session) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(Session, "commit", broken_commit)
    with pytest.raises(RuntimeError):
        archive.upload()
    monkeypatch.undo()
    assert_nothing_kept(archive)


def test_settings_fixture_is_isolated(settings: Settings) -> None:
    assert settings.audit_sample_rate == 0.0


def test_a_cameras_first_reference_holds_the_canonical_hr_pixels(
    archive_factory, settings_with
) -> None:
    # Not sampled by its hash: the reference is made in the decode slot, as the camera has no
    # first frame yet.
    archive = archive_factory(settings_with(audit_sample_rate=0.000001))
    data = image_bytes("JPEG", width=500, height=300, seed=3)

    frame = archive.upload(data).json()

    assert frame["audit_reference"] is True
    reference = decode(archive.runtime.store.get(f"references/{frame['id'][:2]}/{frame['id']}.png"))
    expected = archive.runtime.profile.canonicalise(Image.open(io.BytesIO(data)))
    assert reference.tobytes() == expected.tobytes()


def test_the_upload_after_a_cameras_first_frame_is_gone_becomes_its_first(
    archive_factory, settings_with
) -> None:
    # Deleting the first frame deletes its claim (ON DELETE CASCADE, done here directly): the
    # camera's next upload claims and keeps a reference, and the one after it does not.
    import sqlalchemy as sa

    from app.db import unit_of_work
    from app.frames.models import CameraFirstFrame

    archive = archive_factory(settings_with(audit_sample_rate=0.000001))
    first = archive.upload(image_bytes(seed=41, width=64, height=48)).json()
    with unit_of_work(archive.runtime.session_factory) as session:
        session.execute(sa.delete(CameraFirstFrame))
    second = archive.upload(image_bytes(seed=42, width=64, height=48)).json()
    third = archive.upload(image_bytes(seed=43, width=64, height=48)).json()

    references = [frame["audit_reference"] for frame in (first, second, third)]
    assert references == [True, True, False]
    with archive.runtime.session_factory() as session:
        claimed = session.scalar(sa.select(CameraFirstFrame.frame_id))
    assert claimed == second["id"]


def test_a_cameras_first_reference_is_made_from_the_one_decode(
    archive_factory, settings_with, monkeypatch
) -> None:
    # Made in the decode slot with the stored frame, not decoded again after the claim, which
    # would hold the database's write lock for a second decode.
    from app.frames import service

    archive = archive_factory(settings_with(audit_sample_rate=0.000001))
    decodes = []
    real_decode = service.decode_upload

    def counting_decode(*args, **kwargs):
        decodes.append(1)
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(service, "decode_upload", counting_decode)
    first = archive.upload(image_bytes(seed=21, width=64, height=48)).json()
    second = archive.upload(image_bytes(seed=22, width=64, height=48)).json()

    assert (first["audit_reference"], second["audit_reference"]) == (True, False)
    assert len(decodes) == 2  # one per upload
    assert len([key for key in archive.blobs() if key.startswith("references/")]) == 1


def test_an_upload_that_loses_the_first_frame_claim_keeps_no_reference(
    archive_factory, settings_with, monkeypatch
) -> None:
    # It saw the camera without a first frame and made a reference, but a concurrent upload
    # claimed first: its reference is neither stored nor counted.
    import sqlalchemy as sa

    from app.frames import repository
    from app.frames.models import Frame

    archive = archive_factory(settings_with(audit_sample_rate=0.000001))
    monkeypatch.setattr(repository, "claim_first_frame", lambda session, camera_id, frame_id: False)

    frame = archive.upload(image_bytes(seed=31, width=64, height=48)).json()

    assert frame["audit_reference"] is False
    assert not [key for key in archive.blobs() if key.startswith("references/")]
    with archive.runtime.session_factory() as session:
        stored = session.execute(sa.select(Frame.reference_key, Frame.reference_bytes)).one()
    assert tuple(stored) == (None, 0)
