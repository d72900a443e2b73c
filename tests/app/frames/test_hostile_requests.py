"""Requests a hostile or careless client sends: times outside what UTC can hold, forged cursors,
epoch numbers, repeated fields, reused Idempotency-Keys, huge or odd values. Each is a 422 that
names the field, is bounded in length and shows no Python internals, and leaves nothing behind."""

from __future__ import annotations

import base64
import json
import re

import pytest

from tests.app.conftest import CAPTURED_AT, Archive
from tests.app.images import image_bytes

MAX_MESSAGE = 300
EDGES = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]


def assert_rejected(response, status: int, *words: str) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    message = response.json()["error"]["message"]
    assert len(message) <= MAX_MESSAGE, message[:400]
    assert not re.search(r"<[^>]*(object at 0x|class ')", message), message
    for word in words:
        assert word in message, message[:400]
    return str(message)


def assert_nothing_left(archive: Archive) -> None:
    assert archive.count("frames") == 0 and archive.blobs() == []


@pytest.mark.parametrize("captured_at", EDGES)
def test_captured_at_outside_utc_years_is_422(archive: Archive, captured_at: str) -> None:
    response = archive.upload(captured_at=captured_at)
    assert_rejected(response, 422, "captured_at", "outside years 1-9999")
    assert_nothing_left(archive)


@pytest.mark.parametrize("field", ["from", "to"])
@pytest.mark.parametrize("instant", EDGES)
def test_listing_bounds_outside_utc_years_are_422(
    archive: Archive, field: str, instant: str
) -> None:
    response = archive.get("/v1/frames", params={field: instant})
    assert_rejected(response, 422, field, "outside years 1-9999")


@pytest.mark.parametrize("field", ["from", "to"])
@pytest.mark.parametrize("instant", EDGES)
def test_restore_job_bounds_outside_utc_years_are_422(
    archive: Archive, field: str, instant: str
) -> None:
    response = archive.client.post(
        "/v1/restore-jobs",
        json={"camera_id": "cam-1", field: instant},
        headers=archive.as_key("operator"),
    )
    assert_rejected(response, 422, field, "outside years 1-9999")


def cursor(captured_at: str, frame_id: object = "0" * 32) -> str:
    raw = json.dumps([captured_at, frame_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "forged",
    [
        cursor("2024-05-01T12:00:00"),  # no offset
        cursor(EDGES[0]),
        cursor(EDGES[1]),
        cursor("2024-05-01T12:00:00+00:00", frame_id=["a"]),
        base64.urlsafe_b64encode(b'{"a": 1, "b": 2}').decode(),
        "not base64 !",
    ],
)
def test_a_forged_cursor_is_422(archive: Archive, forged: str) -> None:
    archive.frame_id()
    response = archive.get("/v1/frames", params={"cursor": forged})
    assert_rejected(response, 422, "cursor")


def test_a_cursor_we_made_still_pages(archive: Archive) -> None:
    ids = [archive.frame_id(image_bytes(seed=s)) for s in range(3)]
    first = archive.get("/v1/frames", params={"limit": 2}).json()
    second = archive.get("/v1/frames", params={"limit": 2, "cursor": first["next_cursor"]})
    # One capture time for all three: capture order breaks the tie by id.
    assert [f["id"] for f in first["items"] + second.json()["items"]] == sorted(ids)


@pytest.mark.parametrize("epoch", ["1714564800", "1714564800000", "1714564800.5"])
def test_captured_at_as_an_epoch_number_is_422(archive: Archive, epoch: str) -> None:
    response = archive.upload(captured_at=epoch)
    assert_rejected(response, 422, "captured_at", "ISO 8601 with a UTC offset is required")
    assert_nothing_left(archive)


def test_restore_job_time_as_an_epoch_number_is_422(archive: Archive) -> None:
    response = archive.client.post(
        "/v1/restore-jobs",
        json={"camera_id": "cam-1", "from": 1714564800},
        headers=archive.as_key("operator"),
    )
    assert_rejected(response, 422, "from", "ISO 8601")


@pytest.mark.parametrize("field", ["camera_id", "captured_at"])
def test_a_field_sent_twice_is_422(archive: Archive, field: str) -> None:
    form = {"camera_id": "cam-1", "captured_at": CAPTURED_AT}
    form[field] = [form[field], form[field]]  # type: ignore[assignment]
    response = archive.client.post(
        "/v1/frames",
        files={"file": ("frame.png", image_bytes(), "image/png")},
        data=form,
        headers=archive.as_key("operator"),
    )
    assert_rejected(response, 422, field, "2 times")
    assert_nothing_left(archive)


@pytest.mark.parametrize(("key", "status"), [(None, 401), ("investigator", 403)])
def test_a_repeated_field_without_the_right_key_is_refused_for_the_key_first(
    archive: Archive, key: str | None, status: int
) -> None:
    response = archive.client.post(
        "/v1/frames",
        files={"file": ("frame.png", image_bytes(), "image/png")},
        data={"camera_id": ["cam-1", "cam-2"], "captured_at": CAPTURED_AT},
        headers=archive.as_key(key) if key else {},
    )
    assert response.status_code == status, response.text


def test_two_file_parts_are_422(archive: Archive) -> None:
    response = archive.client.post(
        "/v1/frames",
        files=[
            ("file", ("a.png", image_bytes(seed=1), "image/png")),
            ("file", ("b.png", image_bytes(seed=2), "image/png")),
        ],
        data={"camera_id": "cam-1", "captured_at": CAPTURED_AT},
        headers=archive.as_key("operator"),
    )
    assert_rejected(response, 422, "file", "2 times")
    assert_nothing_left(archive)


KEY = {"Idempotency-Key": "nvr-9-upload-0001"}


@pytest.mark.parametrize(
    "change",
    [
        {"captured_at": "2024-05-01T12:00:01Z"},
        {"tags": "night"},
        {"camera_id": "cam-2"},
        {"data": image_bytes(seed=12)},
    ],
)
def test_an_idempotency_key_reused_for_another_request_is_422(
    archive: Archive, change: dict[str, object]
) -> None:
    data = image_bytes(seed=11)
    first = archive.upload(data, camera_id="cam-1", headers=KEY)
    assert first.status_code == 201
    blobs = archive.blobs()
    request = {"data": data, "camera_id": "cam-1"} | change
    again = archive.upload(headers=KEY, **request)  # type: ignore[arg-type]
    message = assert_rejected(again, 422, "Idempotency-Key")
    # Another camera's frame id and name stay private.
    assert first.json()["id"] not in message and "cam-1" not in message
    assert archive.count("frames") == 1 and archive.blobs() == blobs


def test_the_same_request_with_its_key_again_is_the_same_frame(archive: Archive) -> None:
    data = image_bytes(seed=13)
    first = archive.upload(data, headers=KEY, tags="a,b")
    again = archive.upload(data, headers=KEY, tags="a,b")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]


def test_captured_at_in_another_offset_is_the_same_request(archive: Archive) -> None:
    data = image_bytes(seed=14)
    first = archive.upload(data, headers=KEY, captured_at="2024-05-01T12:00:00Z")
    again = archive.upload(data, headers=KEY, captured_at="2024-05-01T14:00:00+02:00")
    assert (first.status_code, again.status_code) == (201, 200)


def test_the_file_as_a_text_field_says_so_without_a_repr(archive: Archive) -> None:
    response = archive.client.post(
        "/v1/frames",
        data={"file": "not a file", "camera_id": "cam-1", "captured_at": CAPTURED_AT},
        headers=archive.as_key("operator"),
    )
    assert_rejected(response, 422, "file")


@pytest.mark.parametrize(
    "form",
    [
        {"camera_id": "c" * 100_000},
        {"captured_at": "x" * 100_000},
        {"tags": "é" * 50_000},
        {"tags": "ok," + "bad!" * 25_000},
    ],
)
def test_huge_fields_get_a_short_message(archive: Archive, form: dict[str, str]) -> None:
    response = archive.upload(**form)  # type: ignore[arg-type]
    assert_rejected(response, 422, next(iter(form)).replace("tags", "tag"))
    assert_nothing_left(archive)


def test_an_unknown_long_path_gets_a_short_message(archive: Archive) -> None:
    response = archive.get("/v1/" + "x" * 10_000)
    assert_rejected(response, 404, "no such endpoint")
