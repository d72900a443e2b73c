"""benchmarks/ingest.py: its frames and its floor are the server's own work on real images."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ingest() -> ModuleType:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("ingest_bench", ROOT / "benchmarks" / "ingest.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["ingest_bench"] = module
    spec.loader.exec_module(module)
    return module


def test_frames_are_distinct_720p_jpegs(ingest: ModuleType) -> None:
    frames = ingest.make_frames(3)
    assert len(set(frames)) == 3
    assert all(f.startswith(b"\xff\xd8\xff") for f in frames)


@pytest.mark.parametrize("profile", ["400:2:webp-lossless", "400:2:avif-q50"])
def test_floor_times_every_stage_of_one_frame(ingest: ModuleType, profile: str) -> None:
    stages = ingest.floor_one(ingest.make_frames(1)[0], profile)
    assert set(stages) == {"hash", "decode", "resize", "encode"}
    assert all(seconds > 0 for seconds in stages.values())
