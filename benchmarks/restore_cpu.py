"""Restore speed on the CPU: the service's restore path against the plain way, side by side.

    python benchmarks/restore_cpu.py [--data ../shared/data/cctv] [--threads 2] [--repeat 5]
        [--quality-every 4]

"Served" is what the service loads (`CCTV_RESTORE_ENGINE=auto`: where the CPU computes bf16
natively, OpenVINO bf16 or int8, whichever it timed faster, else the int8 engine, when installed
and in agreement, else torch; frames
up to 512x512 LR whole, tiles of one shape batched), one pass per frame like the other columns;
"as served" adds a self-ensemble when `--ensemble` asks for one (`CCTV_RESTORE_ENSEMBLE=2`: two
passes per frame, averaged; the service's default is one pass, so "served" is then the time a frame
really takes and the column is left out).
"Plain" is the same weights in eager PyTorch fp32, one whole frame per forward pass. "Before" is
the served path as it was before issue 13 (torch, 256-pixel tiles one at a time). Timings are
interleaved (plain, served, plain, ...) so a machine that slows down mid-run slows every column,
and the figure to read is the ratio. Quality: PSNR-Y against the HR frames of `DATA/val` (every
`--quality-every`-th image) through the archive's own degradation, plain vs served.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.data import find_images, make_pair
from models.degradation import Profile
from models.metrics import psnr_y
from models.restorer import ENSEMBLES, SERVED_ENSEMBLE, Restorer

SIZES = [(200, 200), (360, 640)]  # LR (h, w): the 400 profile and `native` 1280x720
PAUSE_S = 0.5


@dataclass(frozen=True)
class SpeedRow:
    frame: str  # LR size, WxH
    batch: int
    plain_s: float  # seconds per frame
    before_s: float
    served_s: float
    ensemble: int
    as_served_s: float  # with the self-ensemble: what one frame costs as the service runs it

    @property
    def speedup(self) -> float:
        return self.plain_s / self.served_s


@dataclass(frozen=True)
class QualityRow:
    images: int
    plain_db: float
    served_db: float

    @property
    def delta_db(self) -> float:
        return self.served_db - self.plain_db


def camera_frame(height: int, width: int, seed: int) -> np.ndarray:
    """A camera-like LR frame: gradients, texture and sensor noise (speed does not depend on
    content, but the int8 engine's ranges were calibrated on real frames)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [x / width * 200, (np.sin(x / 7) * np.cos(y / 5) + 1) * 90, y / height * 220], axis=-1
    )
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


def plain_restore(restorer: Restorer, frames: list[np.ndarray]) -> list[np.ndarray]:
    """Eager PyTorch fp32, batch 1, whole frames, NCHW: the baseline every speed-up is measured
    from. (An NHWC frame merely permuted would be channels-last in memory, which PyTorch keeps
    through the network: the "before" path runs that way, about 20% faster here.)"""
    out = []
    with torch.inference_mode():
        for frame in frames:
            x = torch.tensor(frame).permute(2, 0, 1)[None].float().contiguous()
            y = restorer.network(x).clamp_(0, 255).round_().to(torch.uint8)
            out.append(y[0].permute(1, 2, 0).numpy())
    return out


def interleaved(runs: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median seconds of each run, timed in turn `repeat` times after one warm-up each; the
    order rotates each round and each run starts after a pause, so no run always follows
    another (OpenVINO's threads spin for a while after an inference, slowing whatever is next)."""
    for run in runs.values():
        run()
    names = list(runs)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for round_ in range(repeat):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            time.sleep(PAUSE_S)
            started = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(t) for name, t in times.items()}


def load(model: str, engine: str, **kwargs: object) -> Restorer:
    return Restorer.from_pretrained(model, device="cpu", engine=engine, **kwargs)  # type: ignore[arg-type]


def with_ensemble(restorer: Restorer, ensemble: int) -> Restorer:
    """The same loaded network and engine, running `ensemble` passes per frame."""
    other = copy.copy(restorer)
    other.ensemble = ensemble
    return other


def speed(
    served: Restorer,
    before: Restorer,
    sizes: list[tuple[int, int]],
    batches: list[int],
    repeat: int,
    ensemble: int = SERVED_ENSEMBLE,
) -> list[SpeedRow]:
    """One pass per frame in plain, before and served (`served` as given, with no ensemble);
    "as served" runs `ensemble` passes (timed only when that is more than one)."""
    single, as_served = with_ensemble(served, 1), with_ensemble(served, ensemble)
    rows = []
    for h, w in sizes:
        for batch in batches:
            frames = [camera_frame(h, w, seed) for seed in range(batch)]
            runs = {
                "plain": lambda frames=frames: plain_restore(served, frames),
                "before": lambda frames=frames: before.restore(frames),
                "served": lambda frames=frames: single.restore(frames),
            }
            if ensemble > 1:
                runs["as served"] = lambda frames=frames: as_served.restore(frames)
            t = interleaved(runs, repeat)
            t.setdefault("as served", t["served"])
            rows.append(
                SpeedRow(
                    f"{w}x{h}",
                    batch,
                    t["plain"] / batch,
                    t["before"] / batch,
                    t["served"] / batch,
                    ensemble,
                    t["as served"] / batch,
                )
            )
    return rows


def quality(served: Restorer, data: Path, every: int) -> QualityRow:
    """Mean PSNR-Y (dB) of the plain and the served engine, one pass each, on every `every`-th
    val image: what the engine alone changes."""
    served = with_ensemble(served, 1)
    profile = Profile.parse(f"400:{served.scale}:webp-lossless")
    plain_scores, served_scores = [], []
    for path in find_images(data)[::every]:
        pair = make_pair(path, profile)
        plain_scores.append(psnr_y(plain_restore(served, [pair.lr])[0], pair.hr, served.scale))
        served_scores.append(psnr_y(served.restore([pair.lr])[0], pair.hr, served.scale))
    return QualityRow(
        len(plain_scores), statistics.mean(plain_scores), statistics.mean(served_scores)
    )


def speed_table(rows: list[SpeedRow], engine: str) -> str:
    """The rows as a Markdown table; the "as served" column only when it is a self-ensemble
    (with one pass it is the served column)."""
    n = rows[0].ensemble if rows else SERVED_ENSEMBLE
    extra = f" as served: {engine}, ensemble x{n} (ms/frame) |" if n > 1 else ""
    lines = [
        "| frame (LR) | batch | plain: eager fp32, batch 1 (ms/frame) | before: torch, "
        f"256-px tiles (ms/frame) | served: {engine} (ms/frame) | served vs plain "
        f"| served vs before |{extra}",
        "|---|---|---|---|---|---|---|" + ("---|" if n > 1 else ""),
    ]
    for r in rows:
        line = (
            f"| {r.frame} | {r.batch} | {r.plain_s * 1e3:.0f} | {r.before_s * 1e3:.0f} "
            f"| {r.served_s * 1e3:.0f} | **{r.speedup:.2f}x** | {r.before_s / r.served_s:.2f}x |"
        )
        lines.append(line + (f" {r.as_served_s * 1e3:.0f} |" if n > 1 else ""))
    return "\n".join(lines)


def quality_line(row: QualityRow, data: Path, every: int, engine: str) -> str:
    return (
        f"PSNR-Y on {row.images} images of {data} ({'all' if every == 1 else f'every {every}th'}, "
        "profile 400:2:webp-lossless): "
        f"plain {row.plain_db:.3f} dB, served ({engine}) {row.served_db:.3f} dB, "
        f"change **{row.delta_db:+.3f} dB** (limit -0.05 dB)"
    )


def choice_line(served: Restorer) -> str:
    """What `auto` timed at load to choose its engine (empty when it had no choice)."""
    if not served.engine_ms:
        return ""
    side = 400 // served.scale  # engines.synthetic_frames: 400x400 HR, degraded
    times = ", ".join(f"{name} {ms:.0f} ms" for name, ms in served.engine_ms.items())
    return f"`auto` timed one {side}x{side} frame at load: {times}; it serves {served.backend}."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="default")
    parser.add_argument("--engine", default="auto", help="the served engine (CCTV_RESTORE_ENGINE)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batches", type=int, nargs="+", default=[1])
    parser.add_argument("--quality-every", type=int, default=4)
    parser.add_argument(
        "--ensemble",
        type=int,
        choices=ENSEMBLES,
        default=SERVED_ENSEMBLE,
        help="passes per frame in the 'as served' column (CCTV_RESTORE_ENSEMBLE)",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="CCTV folder with val/ and train/")
    add_arguments(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    calibration = args.data / "train" if args.data else None
    served = load(args.model, args.engine, calibration=calibration)
    before = load(args.model, "torch", tile=256, batch_size=1)
    print(f"model {served.name}, served engine {served.engine}, {args.threads} threads")
    print(choice_line(served) + "\n")
    rows = speed(served, before, SIZES, args.batches, args.repeat, args.ensemble)
    print(speed_table(rows, served.engine))
    if args.data:
        row = quality(served, args.data / "val", args.quality_every)
        print("\n" + quality_line(row, args.data / "val", args.quality_every, served.engine))
    return 0


if __name__ == "__main__":
    sys.exit(main())
