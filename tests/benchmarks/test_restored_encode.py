"""benchmarks/restored_encode.py: every encoder setting it times is lossless and the served ones
are the service's own, and the batch table times the service's write on 1 and ENCODE_THREADS."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from app.restorations import cache, provenance
from tests.benchmarks.scripts import load_script
from tests.models.conftest import scene


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return load_script("restored_encode.py", "restored_encode_bench")


def test_the_served_settings_are_the_services_and_every_setting_keeps_the_pixels(
    script: ModuleType,
) -> None:
    served = [arguments for label, arguments in script.SETTINGS if "(served)" in label]
    assert {"format": "PNG", "compress_level": provenance.PNG_COMPRESS_LEVEL} in served
    assert any(a.get("method") == provenance.WEBP_METHOD for a in served)
    rows = script.encoder_rows([scene(24, 32, seed=1), scene(24, 32, seed=2)])
    assert [label for label, _, _ in rows] == [label for label, _ in script.SETTINGS]
    assert all(ms > 0 and kb > 0 for _, ms, kb in rows)


def test_the_batch_table_times_one_thread_and_the_served_count_and_restores_it(
    script: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache, "ENCODE_THREADS", 3)
    frames = [np.full((16, 16, 3), i, np.uint8) for i in range(4)]
    rows = script.batch_rows(frames, repeat=2)
    assert [threads for threads, _ in rows] == [1, 3]
    assert all(ms > 0 for _, ms in rows)
    assert cache.ENCODE_THREADS == 3  # put back as it was


def test_main_restores_synthetic_frames_and_prints_both_tables(
    script: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert script.main(["--frames", "2", "--repeat", "1", "--engine", "torch"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2 frames restored by ") and "400x400, from synthetic frames" in out
    assert "| PNG zlib level 1 (served) |" in out
    assert "| 1 |" in out and "vs 1 thread" in out
