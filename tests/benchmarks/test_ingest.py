"""benchmarks/ingest.py: its frames and its floor are the server's own work on real images."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from types import ModuleType

import pytest

from tests.benchmarks.scripts import load_script


@pytest.fixture(scope="module")
def ingest() -> ModuleType:
    return load_script("ingest.py", "ingest_bench")


def test_frames_are_distinct_720p_jpegs(ingest: ModuleType) -> None:
    frames = ingest.make_frames(3)
    assert len(set(frames)) == 3
    assert all(f.startswith(b"\xff\xd8\xff") for f in frames)


@pytest.mark.parametrize("profile", ["400:2:webp-lossless", "400:2:avif-q50"])
def test_floor_times_every_stage_of_one_frame(ingest: ModuleType, profile: str) -> None:
    stages = ingest.floor_one(ingest.make_frames(1)[0], profile)
    assert set(stages) == {"hash", "decode", "resize", "encode"}
    assert all(seconds > 0 for seconds in stages.values())


def test_the_parallel_floor_counts_every_frame_and_its_cpu(ingest: ModuleType) -> None:
    run = ingest.floor_parallel(ingest.make_frames(4), "400:2:webp-lossless", 2)
    assert run.rate > 0
    # Each frame's image work is a few ms of CPU at least, and far less than a second.
    assert 1.0 < run.cpu_ms < 1000.0


def test_level_table_checks_every_level_keeps_the_pixels(ingest: ModuleType) -> None:
    profile = ingest.LOSSLESS
    frames = [ingest.Image.open(ingest.io.BytesIO(data)) for data in ingest.make_frames(2)]
    lr_frames = [profile.downsample(profile.canonicalise(image)) for image in frames]
    rows = ingest.level_table(lr_frames, [0, 6])
    assert [level for level, _, _ in rows] == [0, 6]
    (_, fast_ms, fast_kb), (_, small_ms, small_kb) = rows
    assert fast_ms > 0 and small_ms > 0
    assert small_kb < fast_kb  # level 6 spends time to save bytes


def test_the_server_cpu_reading_counts_a_busy_process(ingest: ModuleType) -> None:
    import os

    before = ingest.process_cpu_s(os.getpid())
    sum(i * i for i in range(2_000_000))
    assert ingest.process_cpu_s(os.getpid()) > before


def test_the_idle_share_is_read_from_the_machines_cpu_ticks(
    ingest: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    idle, total = ingest.cpu_ticks()
    assert 0 <= idle <= total
    sum(i * i for i in range(2_000_000))
    assert ingest.cpu_ticks()[1] > total  # the clock ticks on

    monkeypatch.setattr(ingest, "cpu_ticks", lambda: (130, 1100))
    assert ingest.idle_since((100, 1000)) == pytest.approx(0.3)
    assert ingest.idle_since((130, 1100)) == 0.0  # no time passed: nothing to share out


def test_medians_carry_the_idle_share(ingest: ModuleType) -> None:
    floors = [ingest.FloorRun(100.0, 15.0, idle) for idle in (0.05, 0.09, 0.07)]
    assert ingest.median_floor(floors).idle == pytest.approx(0.07)
    runs = [ingest.HttpRun(80.0, 20.0, 0.5, idle) for idle in (0.12, 0.08, 0.10)]
    assert ingest.median_http(runs).idle == pytest.approx(0.10)


def test_the_floor_times_a_draft_profiles_reduced_decode(ingest: ModuleType) -> None:
    frame = ingest.make_frames(1)[0]
    full = ingest.floor_one(frame, "400:2:webp-lossless")
    draft = ingest.floor_one(frame, "400:2:webp-lossless:draft")
    assert set(full) == set(draft) == {"hash", "decode", "resize", "encode"}
    assert all(t > 0 for t in (*full.values(), *draft.values()))


def test_servers_with_one_and_two_workers_take_turns_on_each_batch(
    ingest: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = ingest.make_frames(6)
    batches = [frames[2:4], frames[4:]]
    runs = ingest.workers_rates("400:2:webp-lossless", batches, frames[:1], 2, [1, 2])
    assert [len(done) for done in runs.values()] == [2, 2]
    assert all(run.rate > 0 and run.server_cpu_ms > 0 for done in runs.values() for run in done)

    ingest.print_workers([("400:2:webp-lossless", runs)], 2)
    table = capsys.readouterr().out
    assert "| 400:2:webp-lossless | 1 |" in table and "1.00x |" in table
    assert "| 400:2:webp-lossless | 2 |" in table


def test_a_servers_cpu_counts_the_worker_processes_it_started(ingest: ModuleType) -> None:
    child = subprocess.Popen(  # a worker: busy a while, then idle until told to end
        [sys.executable, "-c", "sum(i * i for i in range(5_000_000)); input()"],
        stdin=subprocess.PIPE,
    )
    try:
        assert child.pid in ingest.children(os.getpid())
        deadline = time.monotonic() + 30
        while (worker := ingest.process_cpu_s(child.pid)) < 0.2:
            assert time.monotonic() < deadline, "the child never got busy"
            time.sleep(0.05)
        total = ingest.process_cpu_s(os.getpid())
        assert total >= time.process_time() + worker - 0.05  # its own and the worker's
    finally:
        child.communicate(b"\n", timeout=30)


def test_shares_over_rounds_read_as_their_median_and_range(ingest: ModuleType) -> None:
    assert ingest.share_text([0.684]) == "68%"
    assert ingest.share_text([0.71, 0.64, 0.68]) == "68%, 64-71%"
    runs = [ingest.HttpRun(rate, 20.0, 0.5) for rate in (80.0, 90.0, 85.0)]
    assert ingest.median_http(runs) == ingest.HttpRun(85.0, 20.0, 0.5)


def test_a_multipart_upload_is_the_form_the_server_reads(ingest: ModuleType) -> None:
    import asyncio

    from starlette.requests import Request

    frame = ingest.make_frames(1)[0]
    content_type, body = ingest.multipart_upload(frame, "cam-1", "2024-05-01T12:00:00Z")

    async def parse() -> tuple[str, str, bytes]:
        sent = False

        async def receive() -> dict[str, object]:
            nonlocal sent
            chunk, sent = (b"" if sent else body), True
            return {"type": "http.request", "body": chunk, "more_body": False}

        headers = [(b"content-type", content_type.encode())]
        request = Request({"type": "http", "method": "POST", "headers": headers}, receive)
        form = await request.form()
        upload = form["file"]
        return str(form["camera_id"]), str(form["captured_at"]), await upload.read()  # type: ignore[union-attr]

    assert asyncio.run(parse()) == ("cam-1", "2024-05-01T12:00:00Z", frame)


def test_a_share_is_held_against_the_floors_on_either_side(ingest: ModuleType) -> None:
    run = ingest.HttpRun(rate=70.0, server_cpu_ms=20.0, client_cpu_ms=0.5)
    before = ingest.FloorRun(rate=90.0, cpu_ms=15.0)
    after = ingest.FloorRun(rate=110.0, cpu_ms=15.0)

    assert ingest.share_between(run, before, after) == pytest.approx(0.70)
