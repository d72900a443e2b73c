"""Peak memory of the server under 4 concurrent ~38-megapixel uploads, for several values of
CCTV_MAX_CONCURRENT_DECODES.

For each value a fresh `cctv-archive serve` (its own SQLite archive and blob folder in a temporary
folder) is started on a free loopback port; one small upload warms it up, its resident memory
(VmRSS) is read, then 4 different 7552x5032 JPEGs (made here, each under the 25 MiB upload limit)
are uploaded at once and the server's peak resident memory (VmHWM from /proc/PID/status, Linux)
is read. The uploads are sent from this process, so the client's bytes are not counted.
With `--workers N` the server is `serve --workers N`: its figures are summed over the supervisor
and its workers (the peak as the sum of each process's own peak, an upper bound).

    python benchmarks/ingest_memory.py [--decodes 1 2 4] [--uploads 4] [--workers 1 2]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from server import children, serve  # benchmarks/server.py, beside this script

WIDTH, HEIGHT = 7552, 5032  # 38.0 megapixels, under the default CCTV_MAX_PIXELS (40 M)


def large_jpeg(seed: int) -> bytes:
    """A 38-megapixel scene: gradients with a little noise (a realistic JPEG size, ~10 MB)."""
    size = (WIDTH, HEIGHT)
    noise = Image.effect_noise(size, 12 + seed)
    red = Image.linear_gradient("L").resize(size)
    blue = Image.radial_gradient("L").resize(size)
    image = Image.merge("RGB", [red, noise, blue])
    image.putpixel((seed, seed), (seed, 0, 0))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def small_jpeg() -> bytes:
    out = io.BytesIO()
    Image.effect_noise((640, 480), 30).convert("RGB").save(out, format="JPEG")
    return out.getvalue()


def status_kb(pid: int, field: str) -> int:
    """`field` of process `pid` and of the processes it started, summed (KiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) + sum(status_kb(child, field) for child in children(pid))
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def measure(
    decodes: int, uploads: list[bytes], workdir: Path, workers: int = 1
) -> tuple[int, int, list[int]]:
    """(resident KiB after warm-up, peak resident KiB, status codes) of one fresh server."""
    env = {
        "CCTV_MAX_CONCURRENT_DECODES": str(decodes),
        "OMP_NUM_THREADS": "1",
        "CCTV_WEB_WORKERS": str(workers),
    }
    with serve(workdir / f"decodes-{decodes}-workers-{workers}", env, scopes="ingest") as server:

        def upload(data: bytes, camera: str) -> int:
            response = httpx.post(
                f"{server.base_url}/v1/frames",
                headers={"X-API-Key": server.key},
                files={"file": ("frame.jpg", data, "image/jpeg")},
                data={"camera_id": camera, "captured_at": "2024-05-01T12:00:00Z"},
                timeout=300,
            )
            return response.status_code

        if upload(small_jpeg(), "warm-up") != 201:
            raise RuntimeError("warm-up upload was refused")
        resident = status_kb(server.pid, "VmRSS")
        with ThreadPoolExecutor(len(uploads)) as pool:
            codes = list(pool.map(upload, uploads, [f"cam-{i}" for i in range(len(uploads))]))
        peak = status_kb(server.pid, "VmHWM")
        return resident, peak, codes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decodes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--uploads", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[1], help="serve --workers")
    args = parser.parse_args()

    uploads = [large_jpeg(seed) for seed in range(args.uploads)]
    sizes = ", ".join(f"{len(data) / 1e6:.1f}" for data in uploads)
    print(f"{args.uploads} concurrent uploads of {WIDTH}x{HEIGHT} JPEG ({sizes} MB)\n")
    print(
        "| CCTV_MAX_CONCURRENT_DECODES | workers | server RSS before | peak RSS (VmHWM) "
        "| peak - before |"
    )
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="ingest-memory-") as tmp:
        for decodes in args.decodes:
            for workers in args.workers:
                resident, peak, codes = measure(decodes, uploads, Path(tmp), workers)
                if codes != [201] * len(uploads):
                    print(f"uploads answered {codes}, expected 201 each", file=sys.stderr)
                    return 1
                print(
                    f"| {decodes} | {workers} | {resident / 1024:.0f} MiB "
                    f"| {peak / 1024:.0f} MiB | {(peak - resident) / 1024:.0f} MiB |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
