"""benchmarks/restore_api.py against a real server: one restore now and cached reads per frame,
with the engine the server reports."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def api() -> ModuleType:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("api_bench", ROOT / "benchmarks/restore_api.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["api_bench"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_each_frame_is_restored_once_then_read_from_the_cache(api: ModuleType) -> None:
    frames = api.make_frames(2)
    latency = api.measure("torch", frames, cached=3)
    assert latency.engine == "torch"
    assert len(latency.restored_now_s) == 2 and len(latency.cached_s) == 3
    table = api.table([latency])
    assert table.splitlines()[2].startswith("| torch | ")
