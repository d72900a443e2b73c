"""Restore speed on a CUDA GPU beside the FLOP-bound limit: frames/s of a model at each batch size
in fp16 and bf16 (channels-last, one CUDA graph per shape, pinned host memory), one script.

    python benchmarks/restore_gpu.py [--model default] [--sizes 200x200 640x360]
        [--batches 1 4 16 64] [--dtypes fp16 bf16] [--seconds 2] [--peak-tflops N]
        [--out benchmarks/RESULTS-gpu.md] [--device cuda] [--compile]

A row times the whole path a batch pays for on the device: uint8 frames written into pinned host
memory, copied in asynchronously, converted, the network, clamped and rounded to uint8 on the
device, copied back. The limit is the device's dense fp16/bf16 peak over 2 x MACs per frame (the
MACs are counted from the model's convolutions, not estimated); "of limit" is the measured rate
as a fraction of it. "plain" is eager fp32, batch 1, on the same device. "agreement" is the PSNR
of the batch's output against the fp32 network's. With --device cpu the same code runs (no
graphs, no pinned memory): that is how its correctness is tested without a GPU.

A second table puts the device path of each frame size's best row inside a restore job's work,
as app/restorations/task.py does it: each batch's stored frames decoded (WebP lossless,
camera-like frames), restored on the device, and every restored frame encoded as PNG at zlib
level 1 (the service's setting) on `--job-threads` threads (default: one per core) while the
device restores the next batch. A job's frames/s well under the device path's means the host's
cores, not the GPU, bound it.
"""

from __future__ import annotations

import argparse
import copy
import io
import os
import platform
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.metrics import psnr
from models.restorer import Restorer

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
# Dense fp16/bf16 tensor-core peaks (TFLOP/s) from the vendors' data sheets, matched in order
# against torch.cuda.get_device_name(); --peak-tflops overrides.
PEAK_TFLOPS = [
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100", 989.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
    ("A10", 125.0),
    ("V100", 125.0),
    ("T4", 65.0),
]


@dataclass(frozen=True)
class Row:
    frame: str
    dtype: str
    batch: int
    frames_per_s: float
    limit_per_s: float | None
    agreement_db: float


def macs_per_frame(network: nn.Module, height: int, width: int) -> int:
    """Multiply-accumulates of one frame through every Conv2d, from the shapes alone (meta)."""
    total = 0

    def count(module: nn.Module, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size  # type: ignore[misc]
        total += output[0].numel() * module.in_channels // module.groups * kh * kw  # type: ignore[operator]

    shadow = copy.deepcopy(network).to("meta")
    hooks = [m.register_forward_hook(count) for m in shadow.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        shadow(torch.empty(1, 3, height, width, device="meta"))
    for hook in hooks:
        hook.remove()
    return total


def peak_flops(device: torch.device, override_tflops: float | None) -> float | None:
    if override_tflops:
        return override_tflops * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((tflops * 1e12 for key, tflops in PEAK_TFLOPS if key in name), None)


class DevicePath:
    """One batch shape's restore on the device, from pinned uint8 frames to pinned uint8 frames;
    on CUDA replayed as one graph (no per-kernel launch cost at small batches)."""

    def __init__(
        self,
        network: nn.Module,
        device: torch.device,
        dtype: torch.dtype,
        shape: tuple[int, ...],
        *,
        compile: bool = False,
    ) -> None:
        n, h, w, _ = shape
        s = network.config.scale  # type: ignore[union-attr]
        cuda = device.type == "cuda"
        self.device = device
        self.network = copy.deepcopy(network).eval().to(device, dtype=dtype)
        self.network = self.network.to(memory_format=torch.channels_last)
        if compile:
            # Inductor fuses the ReLUs, residual adds and conversions into the convolutions'
            # neighbours and autotunes their kernels; the graph below is still captured by hand.
            mode = "max-autotune-no-cudagraphs" if cuda else "default"
            self.network = torch.compile(self.network, mode=mode, dynamic=False)  # type: ignore[assignment]
        self.dtype = dtype
        self.host_in = torch.empty(shape, dtype=torch.uint8, pin_memory=cuda)
        self.host_out = torch.empty((n, h * s, w * s, 3), dtype=torch.uint8, pin_memory=cuda)
        self.device_in = torch.empty(shape, dtype=torch.uint8, device=device)
        self.device_out = torch.empty(self.host_out.shape, dtype=torch.uint8, device=device)
        self.graph: torch.cuda.CUDAGraph | None = None
        if cuda:
            side = torch.cuda.Stream(device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):
                for _ in range(3):  # warm-up off the default stream, as capture requires
                    self._step()
            torch.cuda.current_stream(device).wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self._step()

    @torch.inference_mode()
    def _step(self) -> None:
        x = self.device_in.permute(0, 3, 1, 2).to(self.dtype)
        x = x.contiguous(memory_format=torch.channels_last)
        y = self.network(x).float().clamp_(0, 255).round_().to(torch.uint8)
        self.device_out.copy_(y.permute(0, 2, 3, 1))

    def run(self, frames: np.ndarray) -> np.ndarray:
        self.host_in.numpy()[:] = frames
        self.device_in.copy_(self.host_in, non_blocking=True)
        if self.graph is not None:
            self.graph.replay()
        else:
            self._step()
        self.host_out.copy_(self.device_out, non_blocking=True)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return self.host_out.numpy()


def frames_per_second(run: object, frames: np.ndarray, seconds: float) -> float:
    """Batches run back to back for about `seconds` (at least 3), after one warm-up."""
    run(frames)  # type: ignore[operator]
    done, started = 0, time.perf_counter()
    while done < 3 or time.perf_counter() - started < seconds:
        run(frames)  # type: ignore[operator]
        done += 1
    return done * len(frames) / (time.perf_counter() - started)


def reference(network: nn.Module, frames: np.ndarray, device: torch.device) -> np.ndarray:
    """Eager fp32 on the device, one frame per pass: the plain way (and the agreement baseline).
    `network` is fp32 on `device`."""
    out = []
    with torch.inference_mode():
        for frame in frames:
            x = torch.from_numpy(frame).to(device).permute(2, 0, 1)[None].float()
            y = network(x).clamp_(0, 255).round_().to(torch.uint8)
            out.append(y[0].permute(1, 2, 0).cpu().numpy())
    return np.stack(out)


def measure(
    network: nn.Module,
    device: torch.device,
    sizes: list[tuple[int, int]],
    batches: list[int],
    dtypes: list[str],
    seconds: float,
    peak: float | None,
    *,
    compile: bool = False,
) -> tuple[list[Row], dict[str, float]]:
    rng = np.random.default_rng(0)
    rows, plain = [], {}
    fp32 = copy.deepcopy(network).eval().to(device, dtype=torch.float32)
    for h, w in sizes:
        frame = f"{w}x{h}"
        limit = peak / (2 * macs_per_frame(network, h, w)) if peak else None
        one = rng.integers(0, 256, (1, h, w, 3), dtype=np.uint8)
        plain[frame] = frames_per_second(partial(reference, fp32, device=device), one, seconds)
        for name in dtypes:
            for batch in batches:
                frames = rng.integers(0, 256, (batch, h, w, 3), dtype=np.uint8)
                try:
                    path = DevicePath(network, device, DTYPES[name], frames.shape, compile=compile)
                    agreement = psnr(path.run(frames), reference(fp32, frames, device))
                    rate = frames_per_second(path.run, frames, seconds)
                except torch.OutOfMemoryError:
                    break  # larger batches will not fit either
                finally:
                    path = None  # type: ignore[assignment]
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                rows.append(Row(frame, name, batch, rate, limit, agreement))
    return rows, plain


# The restored frame's PNG effort, as app/restorations/provenance.py sets it (not imported: the
# GPU machine's image has torch, numpy and Pillow, not the service's dependencies).
PNG_COMPRESS_LEVEL = 1


def stored_frames(count: int, height: int, width: int) -> list[bytes]:
    """Camera-like LR frames (gradients, texture, sensor noise) as the default profile stores
    them: WebP lossless at level 1. (benchmarks/ingest.py makes its uploads the same way; it is
    not imported here, as it needs the service's dependencies.)"""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [x / width * 200, (np.sin(x / 7) * np.cos(y / 5) + 1) * 90, y / height * 220], axis=-1
    )
    out = []
    for _ in range(count):
        pixels = np.clip(base + rng.normal(0, 6, base.shape) + rng.uniform(-30, 30), 0, 255)
        buffer = io.BytesIO()
        Image.fromarray(pixels.astype(np.uint8)).save(
            buffer, format="WEBP", lossless=True, quality=20, method=1, exact=True
        )
        out.append(buffer.getvalue())
    return out


def encode_png(frame: np.ndarray) -> int:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.tell()


def job_rate(path: DevicePath, stored: list[bytes], threads: int, seconds: float) -> float:
    """Frames/s of a restore job's work around `path` (at least 3 batches after one warm-up):
    decode the batch's stored frames, restore them on the device, and encode each restored
    frame as PNG on `threads` threads while the device takes the next batch (one batch's
    encodes in flight at a time, as the job saves one batch while restoring the next)."""
    batch = path.host_in.shape[0]

    def decode(index: int) -> np.ndarray:
        with Image.open(io.BytesIO(stored[index % len(stored)])) as image:
            return np.asarray(image.convert("RGB"))

    with ThreadPoolExecutor(threads) as pool:
        pending: list[Future[int]] = []

        def one_batch(start: int) -> None:
            nonlocal pending
            frames = np.stack([decode(start + i) for i in range(batch)])
            restored = path.run(frames).copy()  # the host buffer is reused by the next run
            for done in pending:
                done.result()
            pending = [pool.submit(encode_png, frame) for frame in restored]

        one_batch(0)
        for done in pending:
            done.result()
        pending = []
        batches, started = 0, time.perf_counter()
        while batches < 3 or time.perf_counter() - started < seconds:
            one_batch(batches * batch)
            batches += 1
        for done in pending:
            done.result()
        return batches * batch / (time.perf_counter() - started)


def measure_jobs(
    network: nn.Module,
    device: torch.device,
    best: list[Row],
    threads: int,
    seconds: float,
    *,
    compile: bool = False,
) -> list[tuple[Row, float]]:
    """(the best row, a job's frames/s around that row's device path) for each row in `best`."""
    out = []
    for row in best:
        width, height = (int(v) for v in row.frame.split("x"))
        shape = (row.batch, height, width, 3)
        path = DevicePath(network, device, DTYPES[row.dtype], shape, compile=compile)
        stored = stored_frames(max(8, row.batch), height, width)
        out.append((row, job_rate(path, stored, threads, seconds)))
        path = None  # type: ignore[assignment]
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return out


def best_rows(rows: list[Row]) -> list[Row]:
    """The fastest row of each frame size."""
    best: dict[str, Row] = {}
    for r in rows:
        if r.frame not in best or r.frames_per_s > best[r.frame].frames_per_s:
            best[r.frame] = r
    return list(best.values())


def job_table(jobs: list[tuple[Row, float]], threads: int) -> str:
    lines = [
        f"| frame (LR) | dtype | batch | device path (frames/s) | job: WebP decode, device, PNG "
        f"encode on {threads} threads (frames/s) | job vs device path |",
        "|---|---|---|---|---|---|",
    ]
    for row, rate in jobs:
        lines.append(
            f"| {row.frame} | {row.dtype} | {row.batch} | {row.frames_per_s:.1f} | {rate:.1f} "
            f"| {rate / row.frames_per_s:.0%} |"
        )
    return "\n".join(lines)


def table(rows: list[Row], plain: dict[str, float]) -> str:
    lines = [
        "| frame (LR) | dtype | batch | frames/s | FLOP-bound limit (frames/s) | of limit "
        "| vs plain fp32 batch 1 | agreement with fp32 (dB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    best = {}
    for r in rows:
        key = (r.frame, r.dtype)
        if key not in best or r.frames_per_s > best[key].frames_per_s:
            best[key] = r
    for r in rows:
        limit = f"{r.limit_per_s:.0f}" if r.limit_per_s else "n/a"
        share = f"{r.frames_per_s / r.limit_per_s:.0%}" if r.limit_per_s else "n/a"
        mark = " (best)" if best[(r.frame, r.dtype)] is r else ""
        lines.append(
            f"| {r.frame} | {r.dtype} | {r.batch}{mark} | {r.frames_per_s:.1f} | {limit} "
            f"| {share} | {r.frames_per_s / plain[r.frame]:.1f}x | {r.agreement_db:.1f} |"
        )
    return "\n".join(lines)


def parse_size(text: str) -> tuple[int, int]:
    width, height = text.lower().split("x")
    return int(height), int(width)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default", help="shipped model name or path")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sizes", type=parse_size, nargs="+", default=["200x200", "640x360"])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--dtypes", nargs="+", choices=list(DTYPES), default=["fp16", "bf16"])
    parser.add_argument("--seconds", type=float, default=2.0, help="per row")
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile (max-autotune) each batch shape"
    )
    parser.add_argument(
        "--job-threads",
        type=int,
        default=os.cpu_count() or 1,
        help="PNG encode threads of the job table (0: no job table)",
    )
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here; run with --device cpu to check the code path")
        return 2
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # pick the fastest kernels per shape, once
    sizes = [parse_size(s) if isinstance(s, str) else s for s in args.sizes]
    network = Restorer.from_pretrained(args.model, device="cpu").network
    peak = peak_flops(device, args.peak_tflops)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    started = time.perf_counter()
    rows, plain = measure(
        network, device, sizes, args.batches, args.dtypes, args.seconds, peak, compile=args.compile
    )
    jobs = []
    if args.job_threads > 0 and rows:
        jobs = measure_jobs(
            network, device, best_rows(rows), args.job_threads, args.seconds, compile=args.compile
        )
    command = " ".join(
        ["python benchmarks/restore_gpu.py", *(sys.argv[1:] if argv is None else argv)]
    )
    peak_text = f"peak {peak / 1e12:.0f} TFLOP/s dense fp16/bf16" if peak else "no peak known"
    params = sum(p.numel() for p in network.parameters())
    header = (
        f"Device: {name or device.type}; torch {torch.__version__}; model {args.model} "
        f"({params / 1e3:.0f}k parameters, {macs_per_frame(network, 200, 200) / 1e9:.1f} GMAC per "
        f"200x200 LR frame); {peak_text}; {os.cpu_count()} CPU cores; ran "
        f"{time.perf_counter() - started:.0f} s.\n\n"
        f"Command: `{command}`\n"
    )
    text = header + "\n" + table(rows, plain) + "\n"
    if jobs:
        text += (
            "\nA restore job's work around each frame size's best row (second table of the "
            "script's docstring):\n\n" + job_table(jobs, args.job_threads) + "\n"
        )
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
