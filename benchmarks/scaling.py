"""Scaling: restore frames/s against batch size and worker processes, ingest frames/s against
concurrent clients; markdown tables and one PNG.

    python benchmarks/scaling.py [--threads 2] [--frames 8] [--repeat 3] [--ingest-frames 48]
        [--clients 1 4 16] [--plot benchmarks/scaling.png] [--data ../shared/data/cctv]

Restore runs the served engine (`restore_cpu.load(MODEL, "auto")`: OpenVINO bf16 or int8 when
installed and in agreement with torch, else torch) on `--frames` camera-like 200x200 LR frames:

- against batch size: one process on `--threads` threads restores the frames in batches of 1, 2,
  4 and 8 (interleaved, median of `--repeat`, as benchmarks/restore_cpu.py times);
- against worker processes: the same cores split, P processes x (threads / P) threads each
  (1 x 2 against 2 x 1 on 2 cores), batch 1, every process restoring its share of the same frames
  at the same moment (a barrier starts them together). Process start-up, model loading and a
  warm-up round are not timed; the worker processes load the engine the parent serves.

Ingest: a fresh `cctv-archive serve` with the default profile (benchmarks/server.py) takes
`--ingest-frames` 1280x720 JPEG uploads from N concurrent clients in this process
(benchmarks/ingest.py's frames and client). The clients share the cores with the server.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from threading import BrokenBarrierError
from typing import Any

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import ingest  # benchmarks/ingest.py, beside this script
import restore_cpu
from server import serve

from app.config import Settings
from models.plot import line_plot
from models.restorer import Restorer

HERE = Path(__file__).resolve().parent
SIZE = (200, 200)  # LR (h, w): the 400 profile
BATCHES = [1, 2, 4, 8]
PROCESSES = [1, 2]
CLIENTS = [1, 4, 16]
DEFAULT_PROFILE = str(Settings.model_fields["profile"].default)
BARRIER_TIMEOUT_S = 600.0
ZERO = "0 (the y axis starts at 0)"


@dataclass(frozen=True)
class Rate:
    setting: str  # the row's label: "4", "2 x 1", ...
    x: int  # batch size, processes or clients
    frames_per_s: float
    server_cpu_ms: float | None = None  # ingest only: CPU per frame of the server, of the clients
    client_cpu_ms: float | None = None


@dataclass(frozen=True)
class Scaling:
    engine: str
    threads: int
    size: tuple[int, int]  # LR (h, w)
    frames: int
    repeat: int
    batches: list[Rate]
    processes: list[Rate]
    profile: str
    uploads: int  # per client count
    clients: list[Rate]


def camera_frames(size: tuple[int, int], count: int) -> list[np.ndarray]:
    return [restore_cpu.camera_frame(*size, seed=seed) for seed in range(count)]


@contextmanager
def batch_size_at_least(restorer: Restorer, batch: int) -> Iterator[None]:
    """So a batch of `batch` frames is one forward pass (the restorer's cap is put back after)."""
    cap = restorer.batch_size
    restorer.batch_size = max(cap, batch)
    try:
        yield
    finally:
        restorer.batch_size = cap


def restore_batches(
    restorer: Restorer, frames: list[np.ndarray], batches: list[int], repeat: int
) -> list[Rate]:
    """Frames/s restoring `frames` in batches of each size, in this process on its threads."""

    def run(batch: int) -> None:
        for start in range(0, len(frames), batch):
            restorer.restore(frames[start : start + batch])

    with batch_size_at_least(restorer, max(batches)):
        seconds = restore_cpu.interleaved(
            {str(b): lambda b=b: run(b) for b in batches},  # type: ignore[misc]
            repeat,
        )
    return [Rate(str(b), b, len(frames) / seconds[str(b)]) for b in batches]


# One worker process's restorer, frames and start barrier (set by _start_worker).
_worker: dict[str, Any] = {}


def _start_worker(
    model: str,
    engine: str,
    threads: int,
    calibration: Path | None,
    size: tuple[int, int],
    count: int,
    barrier: Any,
) -> None:
    torch.set_num_threads(threads)  # before loading: an OpenVINO engine takes its thread count then
    _worker["restorer"] = restore_cpu.load(model, engine, calibration=calibration)
    _worker["frames"] = camera_frames(size, count)
    _worker["barrier"] = barrier


def _restore_share(indices: list[int]) -> str:
    """Wait for every process (and the parent), then restore these frames one at a time."""
    restorer: Restorer = _worker["restorer"]
    _worker["barrier"].wait(BARRIER_TIMEOUT_S)
    for i in indices:
        restorer.restore([_worker["frames"][i]])
    return restorer.engine


@contextmanager
def worker_pool(
    processes: int,
    threads: int,
    *,
    model: str,
    engine: str,
    calibration: Path | None,
    size: tuple[int, int],
    count: int,
) -> Iterator[Callable[[], None]]:
    """`processes` spawned processes of `threads` threads each, each holding the model; yields
    one round: all of them restore their share of the `count` frames at once, batch 1."""
    context = multiprocessing.get_context("spawn")  # no fork of a process running thread pools
    barrier = context.Barrier(processes + 1)
    shares = [list(range(count))[i::processes] for i in range(processes)]
    with ProcessPoolExecutor(
        processes,
        mp_context=context,
        initializer=_start_worker,
        initargs=(model, engine, threads, calibration, size, count, barrier),
    ) as pool:

        def round_() -> None:
            # A task blocks on the barrier, so each of `processes` workers holds one of them.
            futures = [pool.submit(_restore_share, share) for share in shares]
            try:
                barrier.wait(BARRIER_TIMEOUT_S)
            except BrokenBarrierError:
                for future in futures:
                    future.result()  # a worker's own error, if it had one
                raise
            used = {future.result() for future in futures}
            if used != {engine}:
                raise RuntimeError(f"worker processes restored with {used}, not {engine}")

        yield round_


def restore_processes(
    *,
    model: str,
    engine: str,
    calibration: Path | None,
    threads: int,
    processes: list[int],
    size: tuple[int, int],
    count: int,
    repeat: int,
) -> list[Rate]:
    """Frames/s of `count` frames split over P processes of threads / P threads, for each P;
    all pools started (and warmed) first, then timed in turn."""
    with ExitStack() as stack:
        rounds = {
            f"{p} x {max(1, threads // p)}": stack.enter_context(
                worker_pool(
                    p,
                    max(1, threads // p),
                    model=model,
                    engine=engine,
                    calibration=calibration,
                    size=size,
                    count=count,
                )
            )
            for p in processes
        }
        seconds = restore_cpu.interleaved(rounds, repeat)  # its untimed first run: the warm-up
    return [
        Rate(label, p, count / seconds[label]) for label, p in zip(rounds, processes, strict=True)
    ]


def ingest_clients(clients: list[int], uploads: int, profile: str = DEFAULT_PROFILE) -> list[Rate]:
    """Frames/s of `uploads` distinct uploads over HTTP from each number of concurrent clients,
    to one fresh server (warmed with one upload first)."""
    frames = ingest.make_frames(1 + uploads * len(clients))
    with (
        tempfile.TemporaryDirectory(prefix="scaling-bench-") as tmp,
        serve(Path(tmp), {"CCTV_PROFILE": profile}) as server,
    ):
        ingest.http_rate(server, frames[:1], 1, "warm")
        rates = []
        for i, n in enumerate(clients):
            run = ingest.http_rate(
                server, frames[1 + i * uploads : 1 + (i + 1) * uploads], n, f"c{n}"
            )
            rates.append(Rate(str(n), n, run.rate, run.server_cpu_ms, run.client_cpu_ms))
    return rates


def measure(
    served: Restorer,
    *,
    model: str = "default",
    calibration: Path | None = None,
    threads: int = 2,
    frames: int = 8,
    repeat: int = 3,
    batches: list[int] = BATCHES,
    processes: list[int] = PROCESSES,
    clients: list[int] = CLIENTS,
    uploads: int = 48,
    size: tuple[int, int] = SIZE,
    profile: str = DEFAULT_PROFILE,
) -> Scaling:
    """Every scaling figure; `served` is `model` as this process serves it (on `threads`
    threads), and the worker processes load the same engine."""
    by_batch = restore_batches(served, camera_frames(size, frames), batches, repeat)
    by_process = restore_processes(
        model=model,
        engine=served.engine,
        calibration=calibration,
        threads=threads,
        processes=processes,
        size=size,
        count=frames,
        repeat=repeat,
    )
    by_client = ingest_clients(clients, uploads, profile)
    return Scaling(
        served.engine,
        threads,
        size,
        frames,
        repeat,
        by_batch,
        by_process,
        profile,
        uploads,
        by_client,
    )


def tables(result: Scaling) -> str:
    h, w = result.size
    lines = [
        f"Restore against batch size: {result.engine}, {w}x{h} LR, one process on "
        f"{result.threads} threads, {result.frames} frames (median of {result.repeat} "
        "interleaved runs):",
        "",
        "| batch | ms/frame | frames/s | vs batch 1 |",
        "|---|---|---|---|",
    ]
    base = result.batches[0].frames_per_s
    for r in result.batches:
        lines.append(
            f"| {r.setting} | {1e3 / r.frames_per_s:.0f} | {r.frames_per_s:.2f} "
            f"| {r.frames_per_s / base:.2f}x |"
        )
    lines += [
        "",
        f"Restore against worker processes: {result.engine}, batch 1, {result.threads} threads "
        f"split between the processes, the same {result.frames} frames shared out (median of "
        f"{result.repeat}):",
        "",
        "| processes x threads | frames/s | vs first row |",
        "|---|---|---|",
    ]
    base = result.processes[0].frames_per_s
    for r in result.processes:
        lines.append(f"| {r.setting} | {r.frames_per_s:.2f} | {r.frames_per_s / base:.2f}x |")
    lines += [
        "",
        f"Ingest over HTTP against concurrent clients: a fresh server, profile {result.profile} "
        f"(the default), {result.uploads} uploads of 1280x720 JPEG per row; CPU per frame of the "
        "server process and of the clients (this process, sharing the cores):",
        "",
        "| clients | frames/s | server CPU (ms/frame) | clients' CPU (ms/frame) | vs first row |",
        "|---|---|---|---|---|",
    ]
    base = result.clients[0].frames_per_s
    for r in result.clients:
        lines.append(
            f"| {r.setting} | {r.frames_per_s:.1f} | {r.server_cpu_ms:.1f} "
            f"| {r.client_cpu_ms:.1f} | {r.frames_per_s / base:.2f}x |"
        )
    return "\n".join(lines)


def plot(result: Scaling, path: Path) -> None:
    """Three panels stacked in one PNG (models.plot.line_plot each): frames/s against batch
    size, against processes, against clients."""
    h, w = result.size
    panels = [
        (
            {f"restore, {result.engine}, {result.threads} threads": result.batches},
            f"Restore {w}x{h} LR against batch size (one process)",
            "batch size",
            True,
        ),
        (
            {f"restore, {result.engine}, batch 1": result.processes},
            f"Restore {w}x{h} LR against worker processes ({result.threads} threads split)",
            "processes",
            False,
        ),
        (
            {f"ingest over HTTP, {result.profile}": result.clients},
            "Ingest 1280x720 JPEG against concurrent clients",
            "clients",
            True,
        ),
    ]
    with tempfile.TemporaryDirectory(prefix="scaling-plot-") as tmp:
        images = []
        for i, (series, title, x_label, log_x) in enumerate(panels):
            panel = Path(tmp) / f"{i}.png"
            curves = {
                name: [(float(r.x), r.frames_per_s) for r in rates]
                for name, rates in series.items()
            }
            xs = [x for points in curves.values() for x, _ in points]
            # line_plot fits the y axis to the points: a dashed zero line makes it start at 0,
            # so a few percent between settings does not look like a cliff.
            curves[ZERO] = [(min(xs), 0.0), (max(xs), 0.0)]
            line_plot(
                curves,
                panel,
                title=title,
                x_label=x_label,
                y_label="frames/s",
                log_x=log_x,
                dashed=(ZERO,),
            )
            with Image.open(panel) as image:
                images.append(image.convert("RGB"))
    canvas = Image.new(
        "RGB", (max(i.width for i in images), sum(i.height for i in images)), "white"
    )
    top = 0
    for image in images:
        canvas.paste(image, (0, top))
        top += image.height
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="default")
    parser.add_argument("--engine", default="auto", help="the served engine (CCTV_RESTORE_ENGINE)")
    parser.add_argument("--threads", type=int, default=2, help="cores to use (split by processes)")
    parser.add_argument("--frames", type=int, default=8, help="LR frames per restore measurement")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batches", type=int, nargs="+", default=BATCHES)
    parser.add_argument("--processes", type=int, nargs="+", default=PROCESSES)
    parser.add_argument("--clients", type=int, nargs="+", default=CLIENTS)
    parser.add_argument("--ingest-frames", type=int, default=48, help="uploads per client count")
    parser.add_argument("--size", type=int, default=SIZE[0], help="LR frames are SIZE x SIZE")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="CCTV folder with train/")
    parser.add_argument("--plot", type=Path, default=HERE / "scaling.png")
    add_arguments(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    calibration = args.data / "train" if args.data else None
    served = restore_cpu.load(args.model, args.engine, calibration=calibration)
    print(f"model {served.name}, served engine {served.engine}, {args.threads} threads\n")
    result = measure(
        served,
        model=args.model,
        calibration=calibration,
        threads=args.threads,
        frames=args.frames,
        repeat=args.repeat,
        batches=args.batches,
        processes=args.processes,
        clients=args.clients,
        uploads=args.ingest_frames,
        size=(args.size, args.size),
    )
    print(tables(result))
    plot(result, args.plot)
    print(f"\nwrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
