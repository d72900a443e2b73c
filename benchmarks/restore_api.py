"""Restore latency through the API: a real `cctv-archive serve` (embedded default, in-process
worker), one request at a time, per restore engine.

    python benchmarks/restore_api.py [--engines torch auto] [--frames 10] [--cached 100]

For each engine a fresh server takes `--frames` 1280x720 JPEG uploads; each is then fetched
restored (`GET /v1/frames/{id}/restored`, PNG) once — "restored now", the model runs — and then
`--cached` times from the restore cache. Latency is client-side wall time per request.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import make_frames  # benchmarks/ingest.py, beside this script
from server import serve


@dataclass(frozen=True)
class Latency:
    engine: str  # as the server reports it (X-Restoration-Engine)
    restored_now_s: list[float]
    cached_s: list[float]

    @staticmethod
    def percentile(values: list[float], q: float) -> float:
        return float(np.percentile(values, q))


def measure(engine: str, frames: list[bytes], cached: int) -> Latency:
    """One server with CCTV_RESTORE_ENGINE=`engine`: restored-now and cached latencies."""
    with (
        tempfile.TemporaryDirectory(prefix="restore-bench-") as tmp,
        serve(Path(tmp), {"CCTV_RESTORE_ENGINE": engine}) as server,
        httpx.Client(base_url=server.base_url, timeout=300) as client,
    ):
        headers = {"X-API-Key": server.key}
        ids = []
        for i, data in enumerate(frames):
            response = client.post(
                "/v1/frames",
                headers=headers,
                files={"file": ("frame.jpg", data, "image/jpeg")},
                data={"camera_id": "bench", "captured_at": f"2024-05-01T12:00:{i:02d}Z"},
            )
            response.raise_for_status()
            ids.append(response.json()["id"])

        def fetch(frame_id: str) -> tuple[float, httpx.Response]:
            started = time.perf_counter()
            response = client.get(
                f"/v1/frames/{frame_id}/restored", headers=headers, params={"wait": 300}
            )
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise RuntimeError(f"restore answered {response.status_code}: {response.text}")
            return elapsed, response

        now = [fetch(frame_id) for frame_id in ids]
        served_engine = now[0][1].headers.get("X-Restoration-Engine", "?")
        fetch(ids[0])  # the first cached read warms that path
        hits = [fetch(ids[i % len(ids)])[0] for i in range(cached)]
        return Latency(served_engine, [elapsed for elapsed, _ in now], hits)


def table(results: list[Latency]) -> str:
    lines = [
        "| engine | restored now: p50 (ms) | restored now: p99 (ms) | cached: p50 (ms) "
        "| cached: p99 (ms) |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        p = Latency.percentile
        lines.append(
            f"| {r.engine} | {p(r.restored_now_s, 50) * 1e3:.0f} "
            f"| {p(r.restored_now_s, 99) * 1e3:.0f} | {p(r.cached_s, 50) * 1e3:.1f} "
            f"| {p(r.cached_s, 99) * 1e3:.1f} |"
        )
    if len(results) == 2:
        a, b = (statistics.median(r.restored_now_s) for r in results)
        lines.append(f"\nRestored now, p50: {results[1].engine} is {a / b:.2f}x faster.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", nargs="+", default=["torch", "auto"])
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--cached", type=int, default=100)
    args = parser.parse_args(argv)
    frames = make_frames(args.frames)
    print(table([measure(engine, frames, args.cached) for engine in args.engines]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
