"""Every speed figure of issue 13 in one run: prints the tables and writes benchmarks/RESULTS.md.

    python benchmarks/run_all.py [--data ../shared/data/cctv] [--threads 2]

`--data` is a CCTV folder with train/ (int8 calibration) and val/ (PSNR-Y); without it a small
synthetic set is made (its PSNR-Y then measures agreement, not quality). Sections, each measured
side by side in this run: restore on the CPU (served path vs the plain way, ratio), restore latency
through the API (restored now and cached, torch vs the served engine), ingest over HTTP against
its in-process floor (benchmarks/ingest.py) and an upload's cost besides its image work
(benchmarks/ingest_overhead.py), scaling (restore frames/s against batch size and
worker processes, ingest against concurrent clients: benchmarks/scaling.py; its plot is written
beside the results as scaling.png). The GPU table comes from benchmarks/restore_gpu.py,
run on a GPU machine (`--out benchmarks/RESULTS-gpu.md`), and is included when present.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import ingest  # benchmarks/ingest.py
import ingest_overhead
import restore_api
import restore_cpu
import scaling

from models.restorer import Restorer

HERE = Path(__file__).resolve().parent
GPU_RESULTS = HERE / "RESULTS-gpu.md"
PLOT_NAME = "scaling.png"  # written beside RESULTS.md (--out)


def synthetic_data(folder: Path, count: int = 24) -> Path:
    """train/ and val/ of camera-like 400x400 frames, for a run without the CCTV data."""
    for split, offset in (("train", 0), ("val", 1000)):
        (folder / split / "cam-synthetic").mkdir(parents=True)
        for i in range(count):
            frame = restore_cpu.camera_frame(400, 400, seed=offset + i)
            Image.fromarray(frame).save(folder / split / "cam-synthetic" / f"{i:03d}.png")
    return folder


# The instruction sets that decide which restore engine is fastest (models.engines), as
# /proc/cpuinfo names them.
SIMD_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def machine(cpuinfo: str | None = None) -> str:
    """The CPU's name, family and model, its SIMD that matters here, and the cores available."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text() if path.exists() else ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    cpu = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        cpu += f" (family {fields['cpu family']}, model {fields['model']})"
    flags = fields.get("flags", "").split()
    simd = [flag for flag in SIMD_FLAGS if flag in flags]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    simd_text = "/".join(simd) or ("no AVX2" if flags else "SIMD not known")
    return f"{cpu}, {simd_text}, {cores} cores available"


def load_average() -> str:
    return "load average " + " / ".join(f"{x:.1f}" for x in os.getloadavg()) + " (1/5/15 min)"


def versions() -> str:
    found = [f"torch {torch.__version__}"]
    for name in ("openvino", "onnxruntime"):
        with contextlib.suppress(ImportError):
            found.append(f"{name} {__import__(name).__version__}")
    return ", ".join(found)


def scaling_section(
    served: Restorer, calibration: Path | None, args: argparse.Namespace, out: Path
) -> str:
    """benchmarks/scaling.py's tables with `served` (the default model as served) and the
    `--scaling-*` arguments; the plot is written beside `out` as scaling.png and linked."""
    result = scaling.measure(
        served,
        model="default",
        calibration=calibration,
        threads=args.threads,
        frames=args.scaling_frames,
        repeat=args.repeat,
        batches=args.scaling_batches,
        processes=args.scaling_processes,
        clients=args.scaling_clients,
        uploads=args.ingest_frames,
        size=(args.scaling_size, args.scaling_size),
    )
    plot = out.with_name(PLOT_NAME)
    scaling.plot(result, plot)
    return (
        f"{scaling.tables(result)}\n\n"
        f"![Frames/s against batch size, worker processes and clients]({PLOT_NAME})"
    )


def nested(markdown: str) -> str:
    """A results file under this file's own heading: its title dropped, its headings one deeper."""
    lines = markdown.strip().splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join("#" + line if line.startswith("#") else line for line in lines).strip()


def printed(script_main: Callable[[list[str]], int], argv: list[str]) -> str:
    """What a benchmark script's `main(argv)` prints, captured as a section and echoed here."""
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        script_main(argv)
    section = captured.getvalue().strip()
    print("\n" + section, flush=True)
    return section


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quality-every", type=int, default=4)
    parser.add_argument("--api-frames", type=int, default=10)
    # Uploads per ingest measurement: 32 took under a second each, and the HTTP share moved
    # from 83% to 59% between two runs on one VM; 128 take a few seconds.
    parser.add_argument("--ingest-frames", type=int, default=128)
    parser.add_argument(
        "--ingest-profiles", nargs="+", default=["400:2:webp-lossless", "400:2:webp-lossless:draft"]
    )
    parser.add_argument("--overhead-uploads", type=int, default=300)
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    scaling_group = parser.add_argument_group("scaling (benchmarks/scaling.py)")
    scaling_group.add_argument("--scaling-frames", type=int, default=8)
    scaling_group.add_argument("--scaling-size", type=int, default=scaling.SIZE[0])
    scaling_group.add_argument("--scaling-batches", type=int, nargs="+", default=scaling.BATCHES)
    scaling_group.add_argument(
        "--scaling-processes", type=int, nargs="+", default=scaling.PROCESSES
    )
    scaling_group.add_argument("--scaling-clients", type=int, nargs="+", default=scaling.CLIENTS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    command = "python benchmarks/run_all.py " + " ".join(sys.argv[1:] if argv is None else argv)
    started, started_at = time.perf_counter(), dt.datetime.now(dt.UTC)
    torch.set_num_threads(args.threads)
    load_at_start = load_average()

    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        data = args.data or synthetic_data(Path(tmp))
        served = restore_cpu.load("default", "auto", calibration=data / "train")
        before = restore_cpu.load("default", "torch", tile=256, batch_size=1)
        speed = restore_cpu.speed(served, before, restore_cpu.SIZES, [1], args.repeat)
        batched = restore_cpu.speed(served, before, [(200, 200)], [4], args.repeat)
        quality = restore_cpu.quality(served, data / "val", args.quality_every)
        scaling_text = scaling_section(served, data / "train", args, args.out)
    cpu_section = "\n\n".join(
        [
            *filter(None, [restore_cpu.choice_line(served)]),
            restore_cpu.speed_table(speed + batched, served.engine),
            restore_cpu.quality_line(
                quality,
                args.data / "val" if args.data else Path("synthetic val"),
                args.quality_every,
                served.engine,
            ),
        ]
    )
    print(cpu_section, flush=True)

    api = [
        restore_api.measure(engine, ingest.make_frames(args.api_frames), 100)
        for engine in ("torch", "auto")
    ]
    api_section = restore_api.table(api)
    print("\n" + api_section, flush=True)

    ingest_section = printed(
        ingest.main,
        [
            *("--profiles", *args.ingest_profiles),
            *("--frames", str(args.ingest_frames), "--processes", str(args.threads)),
            *("--workers", "2"),
            *(("--level-data", str(args.data / "val")) if args.data else ()),
        ],
    )
    overhead_section = printed(ingest_overhead.main, ["--uploads", str(args.overhead_uploads)])
    print("\n" + scaling_text, flush=True)

    gpu_section = (
        nested(GPU_RESULTS.read_text())
        if GPU_RESULTS.exists()
        else "Not run yet: no CUDA GPU on the machine that ran this. On one, run "
        "`python benchmarks/restore_gpu.py --out benchmarks/RESULTS-gpu.md` (under 5 minutes), "
        "then this script again."
    )
    text = f"""# Speed results (issue 13)

Written by `{command}` on {started_at:%Y-%m-%d %H:%M} UTC in {time.perf_counter() - started:.0f} s.

Machine: {machine()}; {load_at_start} at the start, {load_average()} at the end. {versions()};
{args.threads} threads. Absolute times depend on the machine and its load; every ratio below
compares figures measured side by side in this one run.

## Restore on the CPU (default model, {served.name})

"Plain": eager PyTorch fp32, NCHW, one whole frame per forward pass. "Before": the served path
before issue 13 (torch fp32, 256-pixel tiles one at a time; channels-last in memory, since the
NHWC frames are only permuted). "Served": what `cctv-archive serve` loads
with `CCTV_RESTORE_ENGINE=auto`. These three make one pass per frame, so their ratio is the
engine's alone, and "served" is the time one frame really takes: the service makes one pass
(`CCTV_RESTORE_ENSEMBLE=1`, the default since 2026-12-01; 2 averages the frame and its mirror
image for +0.06 dB on val, +0.05 dB on val-night at twice the time, see the model card).
Median of {args.repeat} interleaved runs.

{cpu_section}

## Restore latency through the API

A real `cctv-archive serve` (SQLite, local blobs, in-process worker), one request at a time:
{args.api_frames} frames restored now, then 100 cached reads; PNG out.

{api_section}

## Ingest (benchmarks/ingest.py)

{ingest_section}

### An upload's cost besides its image work (benchmarks/ingest_overhead.py)

{overhead_section}

## Scaling (benchmarks/scaling.py)

{scaling_text}

## Restore on a GPU (benchmarks/restore_gpu.py)

{gpu_section}
"""
    args.out.write_text(text)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
