"""Rate-distortion: is half resolution plus a restoring model worth its bytes, against simply
recompressing the whole frame?

    python benchmarks/rate_distortion.py --data ../shared/data/cctv/val [--hr 400|native]
        [--frames N] [--threads 2] [--out DIR] [--fast] [--ensemble 1|2|4|8]

For every stored codec on a quality grid (WebP lossless, WebP q95..q20, JPEG q95..q30, AVIF
q90..q20) the frame goes through the archive's own ingest path (canonicalise, downsample,
encode) and is restored with bicubic and with the shipped model matched to that codec; where no
shipped model was trained on that codec the nearest one restores it and the row says MISMATCHED
(the service would refuse to serve it). Against it: the canonical HR frame recompressed whole with
WebP, JPEG and AVIF across their quality range and decoded directly. PSNR-Y and SSIM-Y against
the canonical HR frame (2 pixels shaved), bytes per frame, encode and decode time per frame.

It writes `rate_distortion.md` (the tables and the crossovers), `results.json` and `plot.png`
(PSNR-Y against kB per frame, log x, one curve per method, mismatched points hollow) to --out.
Frames are an even subsample of --data (all of them with --frames 0), said in the output. The
model makes one pass per frame, as the service does by default, unless --ensemble says more
(CCTV_RESTORE_ENSEMBLE).
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.data import find_images
from models.degradation import Profile, bicubic_upscale, decode_image
from models.metrics import psnr_y, ssim_y
from models.plot import line_plot
from models.registry import ShippedModel, model_for_profile, shipped_models
from models.restorer import ENSEMBLES, Restorer

LR_GRID = {
    "webp": ["webp-lossless"] + [f"webp-q{q}" for q in (95, 90, 80, 75, 60, 50, 40, 30, 20)],
    "jpeg": [f"jpeg-q{q}" for q in (95, 90, 80, 70, 50, 30)],
    "avif": [f"avif-q{q}" for q in (90, 80, 70, 60, 50, 40, 30, 20)],
}
FULL_GRID = {
    "webp": (95, 90, 80, 70, 50, 30, 15, 5, 0),
    "jpeg": (95, 90, 80, 70, 50, 30, 15, 5),
    "avif": (90, 80, 70, 50, 30, 20, 10, 0),
}
# A smaller grid for a quick look (--fast) and for the tests.
FAST_LR = {"webp": ["webp-lossless", "webp-q75"], "jpeg": ["jpeg-q75"], "avif": ["avif-q50"]}
FAST_FULL = {"webp": (75, 20), "jpeg": (75,), "avif": (50,)}
BORDER = 2


def encode_full(hr: Image.Image, kind: str, quality: int) -> bytes:
    """The whole frame recompressed, each codec at its best-compressing usual settings."""
    out = io.BytesIO()
    if kind == "webp":
        hr.save(out, format="WEBP", quality=quality, method=6)
    elif kind == "avif":
        hr.save(out, format="AVIF", quality=quality, speed=6, subsampling="4:2:0")
    else:
        hr.save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()


@dataclass
class Row:
    method: str  # "archive" (half resolution, restored) or "full" (whole frame, decoded)
    family: str  # webp, jpeg, avif
    codec: str  # the profile codec (archive) or "webp q50" (full)
    bytes: list[int] = field(default_factory=list)
    encode_s: list[float] = field(default_factory=list)
    decode_s: list[float] = field(default_factory=list)
    psnr: list[float] = field(default_factory=list)  # full: direct; archive: model
    ssim: list[float] = field(default_factory=list)
    bicubic_psnr: list[float] = field(default_factory=list)
    bicubic_ssim: list[float] = field(default_factory=list)
    model: str = ""
    matched: bool = True

    def mean(self, name: str) -> float:
        values = getattr(self, name)
        return float(np.mean(values)) if values else float("nan")

    def summary(self) -> dict[str, object]:
        keys = ("bytes", "encode_s", "decode_s", "psnr", "ssim", "bicubic_psnr", "bicubic_ssim")
        return {
            "method": self.method,
            "family": self.family,
            "codec": self.codec,
            "model": self.model,
            "matched": self.matched,
            "frames": len(self.bytes),
            **{k: self.mean(k) for k in keys},
        }


def choose_model(profile: Profile, models: list[ShippedModel]) -> tuple[ShippedModel, bool]:
    """The shipped model trained for this profile, else the nearest one (same size rule, same
    codec family at the nearest quality, else a lossless one) and False."""
    try:
        return model_for_profile(profile), True
    except LookupError:
        pass
    same_size = [m for m in models if Profile.parse(m.profile).hr_size == profile.hr_size]
    candidates = same_size or models
    if not candidates:
        raise SystemExit("no shipped model in models/weights")

    def distance(model: ShippedModel) -> tuple[int, int]:
        codec = Profile.parse(model.profile).codec
        family, _, setting = codec.partition("-")
        want_family, _, want_setting = profile.codec.partition("-")
        quality = 100 if setting == "lossless" or family == "png" else int(setting[1:])
        want = 100 if want_setting == "lossless" else int(want_setting[1:])
        return (0 if family == want_family else 1, abs(quality - want))

    return min(candidates, key=distance), False


def pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats with fewer or equal bytes, by bytes."""
    front: list[tuple[float, float]] = []
    for x, y in sorted(points):
        if not front or y > front[-1][1]:
            front.append((x, y))
    return front


def interpolate(curve: list[tuple[float, float]], x: float) -> float:
    """PSNR at `x` bytes on a curve, linear in log bytes; NaN outside its byte range."""
    if not curve or x < curve[0][0] or x > curve[-1][0]:
        return float("nan")
    for (x0, y0), (x1, y1) in itertools.pairwise(curve):
        if x0 <= x <= x1:
            if x1 == x0:
                return max(y0, y1)
            t = (math.log(x) - math.log(x0)) / (math.log(x1) - math.log(x0))
            return y0 + t * (y1 - y0)
    return curve[-1][1]


@dataclass
class Crossover:
    against: str
    overlap: tuple[float, float] | None  # the byte range both can reach
    wins: list[tuple[float, float]]  # byte ranges where the archive restores at least as well
    best_margin_db: float  # archive minus full codec at its best point in the overlap
    best_at_bytes: float
    below_full_min: tuple[float, float] | None  # (bytes, dB) of the archive's smallest point
    # when it is smaller than anything the full codec produces


def crossover(
    archive: list[tuple[float, float]], full: list[tuple[float, float]], name: str
) -> Crossover:
    a, f = pareto(archive), pareto(full)
    lo, hi = max(a[0][0], f[0][0]), min(a[-1][0], f[-1][0])
    below = a[0] if a[0][0] < f[0][0] else None
    if lo >= hi:
        return Crossover(name, None, [], float("nan"), float("nan"), below)
    grid = np.clip(np.exp(np.linspace(math.log(lo), math.log(hi), 400)), lo, hi)
    margin = np.array([interpolate(a, x) - interpolate(f, x) for x in grid])
    wins: list[tuple[float, float]] = []
    start = None
    for x, m in zip(grid, margin, strict=True):
        if m >= 0 and start is None:
            start = x
        if m < 0 and start is not None:
            wins.append((float(start), float(x)))
            start = None
    if start is not None:
        wins.append((float(start), float(grid[-1])))
    best = int(np.nanargmax(margin))
    return Crossover(name, (lo, hi), wins, float(margin[best]), float(grid[best]), below)


def measure(
    paths: list[Path],
    profile_of: dict[str, Profile],
    restorers: dict[str, Restorer],
    chosen: dict[str, tuple[ShippedModel, bool]],
    full_grid: dict[str, tuple[int, ...]],
    base: Profile,
) -> tuple[list[Row], dict[str, list[float]]]:
    rows: dict[str, Row] = {}
    model_s: dict[str, list[float]] = {}
    for index, path in enumerate(paths, 1):
        with Image.open(path) as image:
            hr_image = base.canonicalise(image)
        hr = np.asarray(hr_image)
        lr_image = base.downsample(hr_image)
        for codec, profile in profile_of.items():
            model, matched = chosen[codec]
            row = rows.setdefault(
                codec,
                Row("archive", codec.split("-")[0], codec, model=model.name, matched=matched),
            )
            t0 = time.perf_counter()
            data = profile.encode(lr_image)
            t1 = time.perf_counter()
            lr = decode_image(data)
            t2 = time.perf_counter()
            row.bytes.append(len(data))
            row.encode_s.append(t1 - t0)
            row.decode_s.append(t2 - t1)
            bicubic = bicubic_upscale(lr, base.scale)
            row.bicubic_psnr.append(psnr_y(bicubic, hr, BORDER))
            row.bicubic_ssim.append(ssim_y(bicubic, hr, BORDER))
            t3 = time.perf_counter()
            restored = restorers[model.name].restore([lr])[0]
            model_s.setdefault(model.name, []).append(time.perf_counter() - t3)
            row.psnr.append(psnr_y(restored, hr, BORDER))
            row.ssim.append(ssim_y(restored, hr, BORDER))
        for kind, qualities in full_grid.items():
            for quality in qualities:
                name = f"{kind} q{quality}"
                row = rows.setdefault(name, Row("full", kind, name))
                t0 = time.perf_counter()
                data = encode_full(hr_image, kind, quality)
                t1 = time.perf_counter()
                decoded = decode_image(data)
                t2 = time.perf_counter()
                row.bytes.append(len(data))
                row.encode_s.append(t1 - t0)
                row.decode_s.append(t2 - t1)
                row.psnr.append(psnr_y(decoded, hr, BORDER))
                row.ssim.append(ssim_y(decoded, hr, BORDER))
        print(f"  frame {index}/{len(paths)} {path.name}", file=sys.stderr, flush=True)
    return list(rows.values()), model_s


def served_points(rows: list[Row]) -> list[tuple[float, float]]:
    """What the archive can serve: bicubic always, the model only where it is matched."""
    points = []
    for r in rows:
        if r.method != "archive":
            continue
        points.append((r.mean("bytes"), r.mean("bicubic_psnr")))
        if r.matched:
            points.append((r.mean("bytes"), r.mean("psnr")))
    return points


def report(
    rows: list[Row], crossovers: list[Crossover], model_s: dict[str, list[float]], header: str
) -> str:
    lines = [header, ""]
    lines += [
        "Half resolution, stored by the archive, then restored:",
        "",
        "| stored codec | kB/frame | bicubic PSNR-Y | bicubic SSIM | model PSNR-Y | model SSIM "
        "| gain | model | encode ms | decode ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.method != "archive":
            continue
        model = r.model if r.matched else f"{r.model} MISMATCHED"
        lines.append(
            f"| {r.codec} | {r.mean('bytes') / 1000:.1f} | {r.mean('bicubic_psnr'):.2f} "
            f"| {r.mean('bicubic_ssim'):.4f} | {r.mean('psnr'):.2f} | {r.mean('ssim'):.4f} "
            f"| {r.mean('psnr') - r.mean('bicubic_psnr'):+.2f} | {model} "
            f"| {r.mean('encode_s') * 1e3:.1f} | {r.mean('decode_s') * 1e3:.1f} |"
        )
    lines += [
        "",
        "The whole frame recompressed and decoded directly (no restoration):",
        "",
        "| codec | kB/frame | PSNR-Y | SSIM | encode ms | decode ms |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.method == "full":
            lines.append(
                f"| {r.codec} | {r.mean('bytes') / 1000:.1f} | {r.mean('psnr'):.2f} "
                f"| {r.mean('ssim'):.4f} | {r.mean('encode_s') * 1e3:.1f} "
                f"| {r.mean('decode_s') * 1e3:.1f} |"
            )
    lines += ["", "Model restore time per frame (this run's threads):", ""]
    for name, times in model_s.items():
        lines.append(f"- {name}: {np.mean(times) * 1e3:.0f} ms")
    lines += [
        "",
        "Crossovers: where the archive (bicubic, or a matched model) restores at least as well as",
        "the whole frame recompressed at the same bytes (linear in log bytes between measured",
        "points; mismatched models excluded, since the service will not serve them):",
        "",
    ]
    for c in crossovers:
        lines.append(f"- {describe_crossover(c)}")
    return "\n".join(lines) + "\n"


def describe_crossover(c: Crossover) -> str:
    text = f"against whole-frame {c.against}: "
    if c.overlap is None:
        text += "the two never reach the same byte range"
    elif c.wins:
        spans = ", ".join(f"{lo / 1000:.1f}-{hi / 1000:.1f} kB" for lo, hi in c.wins)
        text += (
            f"the archive wins in {spans} (best margin {c.best_margin_db:+.2f} dB at "
            f"{c.best_at_bytes / 1000:.1f} kB)"
        )
    else:
        text += (
            f"no crossover in {c.overlap[0] / 1000:.1f}-{c.overlap[1] / 1000:.1f} kB; it misses "
            f"by {-c.best_margin_db:.2f} dB at best ({c.best_at_bytes / 1000:.1f} kB)"
        )
    if c.below_full_min is not None:
        text += (
            f"; below the smallest {c.against} frame the archive still stores "
            f"{c.below_full_min[0] / 1000:.1f} kB at {c.below_full_min[1]:.2f} dB"
        )
    return text


def plot(rows: list[Row], path: Path, title: str) -> None:
    series: dict[str, list[tuple[float, float]]] = {}
    hollow: dict[str, set[tuple[float, float]]] = {}
    dashed = []
    for r in rows:
        kb = r.mean("bytes") / 1000
        if r.method == "full":
            series.setdefault(f"whole frame {r.family}", []).append((kb, r.mean("psnr")))
            continue
        name = f"half res {r.family} + model"
        point = (kb, r.mean("psnr"))
        series.setdefault(name, []).append(point)
        if not r.matched:
            hollow.setdefault(name, set()).add(point)
        bicubic = f"half res {r.family} + bicubic"
        series.setdefault(bicubic, []).append((kb, r.mean("bicubic_psnr")))
        dashed.append(bicubic)
    line_plot(
        series,
        path,
        title=title + " (hollow: model not trained on that codec)",
        x_label="kB per frame (log scale)",
        y_label="PSNR-Y dB",
        log_x=True,
        dashed=tuple(dashed),
        hollow=hollow,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="HR frames, e.g. ../shared/data/cctv/val")
    parser.add_argument("--hr", choices=("400", "native"), default="400")
    parser.add_argument(
        "--frames",
        type=int,
        default=None,
        help="an even subsample of N frames (default 12 at 400, 4 at native; 0: all)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", help="folder for the outputs (default runs/rd-DATA-HR)")
    parser.add_argument("--fast", action="store_true", help="a small grid, for a quick look")
    parser.add_argument(
        "--ensemble",
        type=int,
        choices=ENSEMBLES,
        default=1,
        help="model passes per frame (self-ensemble; the service serves 1, CCTV_RESTORE_ENSEMBLE)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    base = Profile(hr_size=400 if args.hr == "400" else None)
    all_paths = find_images(args.data)
    if not all_paths:
        raise SystemExit(f"no images in {args.data}")
    wanted = args.frames if args.frames is not None else (12 if args.hr == "400" else 4)
    paths = all_paths
    if wanted and wanted < len(all_paths):
        step = len(all_paths) / wanted
        paths = [all_paths[int(i * step)] for i in range(wanted)]
    lr_grid, full_grid = (FAST_LR, FAST_FULL) if args.fast else (LR_GRID, FULL_GRID)
    size = base.hr_size or "native"
    profile_of = {c: Profile.parse(f"{size}:2:{c}") for fam in lr_grid.values() for c in fam}
    models = shipped_models()
    chosen = {c: choose_model(p, models) for c, p in profile_of.items()}
    restorers: dict[str, Restorer] = {}
    for model, _ in chosen.values():
        if model.name not in restorers:
            restorers[model.name] = Restorer.from_pretrained(
                str(model.path), ensemble=args.ensemble
            )

    data_name = Path(args.data).resolve().name
    out = Path(args.out or f"runs/rd-{data_name}-{size}")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rows, model_s = measure(paths, profile_of, restorers, chosen, full_grid, base)
    elapsed = time.perf_counter() - started

    archive = served_points(rows)
    crossovers = [
        crossover(
            archive,
            [
                (r.mean("bytes"), r.mean("psnr"))
                for r in rows
                if r.method == "full" and r.family == kind
            ],
            kind,
        )
        for kind in full_grid
    ]
    header = (
        f"# Rate-distortion on {data_name}, HR {size}\n\n"
        f"{len(paths)} of {len(all_paths)} frames (an even subsample), canonicalised as the "
        f"archive does ({'400x400' if base.hr_size else 'own size, modcropped'}), x2; PSNR-Y and "
        f"SSIM-Y against that HR frame, {BORDER} pixels shaved; the model {args.ensemble} "
        f"pass{'es' if args.ensemble > 1 else ''} per frame; {args.threads} threads; "
        f"{elapsed / 60:.1f} minutes. Command: "
        f"`python benchmarks/rate_distortion.py --data {args.data} --hr {args.hr}"
        + (f" --frames {args.frames}" if args.frames is not None else "")
        + f" --threads {args.threads}"
        + (" --fast" if args.fast else "")
        + (f" --ensemble {args.ensemble}" if args.ensemble != 1 else "")
        + "`"
    )
    text = report(rows, crossovers, model_s, header)
    (out / "rate_distortion.md").write_text(text)
    (out / "results.json").write_text(
        json.dumps(
            {
                "data": args.data,
                "hr": args.hr,
                "frames": [p.name for p in paths],
                "rows": [r.summary() for r in rows],
                "crossovers": [asdict(c) for c in crossovers],
                "model_ms": {k: float(np.mean(v)) * 1e3 for k, v in model_s.items()},
                "minutes": elapsed / 60,
            },
            indent=2,
        )
    )
    plot(rows, out / "plot.png", f"{data_name}, HR {size}, {len(paths)} frames")
    print(text)
    print(f"wrote {out}/rate_distortion.md, results.json, plot.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
