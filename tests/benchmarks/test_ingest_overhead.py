"""benchmarks/ingest_overhead.py: the server's cost of an upload with the image work cached."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import ModuleType

import pytest

from tests.benchmarks.scripts import load_script


@pytest.fixture(scope="module")
def overhead() -> ModuleType:
    return load_script("ingest_overhead.py", "ingest_overhead_bench")


def test_the_image_work_is_done_once_per_kind_then_reused(overhead: ModuleType) -> None:
    from app.frames import service

    real = service._image_work
    frames = overhead.make_frames(2)
    settings = overhead.Settings(_env_file=None, environment="test")
    profile = overhead.Profile.parse(overhead.PROFILE)
    with overhead.cached_image_work():
        first = service._image_work(frames[0], profile, settings, reference=False)
        again = service._image_work(frames[1], profile, settings, reference=False)
        with_reference = service._image_work(frames[1], profile, settings, reference=True)
    assert again is first
    assert with_reference is not first and with_reference.reference is not None
    assert service._image_work is real  # put back


def test_each_row_is_measured_on_real_uploads(
    overhead: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert overhead.main(["--uploads", "3", "--rounds", "2", "--http-clients", "2"]) == 0

    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert [row.split(" | ")[0] for row in rows[1:]] == [
        "| ingest_frame",
        "| key look-up",
        "| whole request, ASGI (no HTTP server)",
        "| web stack alone: ASGI, the service call cached",
        "| whole request over HTTP (serve, 2 clients)",
    ]
    assert all(float(row.split(" | ")[1]) > 0 for row in rows[1:])


def test_the_web_stack_row_archives_one_frame_and_answers_every_request(
    overhead: ModuleType, tmp_path: Path
) -> None:
    from app.frames import endpoints
    from app.frames.models import Frame

    real = endpoints._ingest
    frame = overhead.make_frames(1)[0]
    settings = overhead.archive_settings(tmp_path)
    with overhead.cached_image_work():
        cpu_ms = asyncio.run(
            overhead.request_rounds(settings, frame, uploads=3, rounds=2, web_only=True)
        )

    assert len(cpu_ms) == 2 and all(value > 0 for value in cpu_ms)  # each of the 6 answered 201
    with overhead.unit_of_work(overhead.make_session_factory(settings)) as session:
        assert session.query(Frame).count() == 1  # the service ran once; its answer was reused
    assert endpoints._ingest is real  # put back


def test_the_server_it_launches_caches_the_image_work_and_archives_every_upload(
    overhead: ModuleType, tmp_path: Path
) -> None:
    frame = overhead.make_frames(1)[0]
    [cpu_ms] = overhead.http_rounds(tmp_path, frame, uploads=5, rounds=1, clients=1)

    assert cpu_ms > 0
    assert "image work cached" in (tmp_path / "serve.log").read_text()
    assert len(list((tmp_path / "data").rglob("*.webp"))) == 2 + 5  # warm-up and round
