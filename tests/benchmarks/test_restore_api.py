"""benchmarks/restore_api.py against a real server: one restore now and cached reads per frame,
with the engine the server reports."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.benchmarks.scripts import load_script


@pytest.fixture(scope="module")
def api() -> ModuleType:
    return load_script("restore_api.py", "api_bench")


@pytest.mark.slow
def test_each_frame_is_restored_once_then_read_from_the_cache(api: ModuleType) -> None:
    frames = api.make_frames(2)
    latency = api.measure("torch", frames, cached=3)
    assert latency.engine == "torch"  # the service's default: one pass
    assert len(latency.restored_now_s) == 2 and len(latency.cached_s) == 3
    table = api.table([latency])
    assert table.splitlines()[2].startswith("| torch | ")
