"""benchmarks/ingest.py: its frames and its floor are the server's own work on real images."""

from __future__ import annotations

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
