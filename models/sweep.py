"""The study's depth sweep (its Figure 4): one recipe trained at several depths, validation PSNR
against depth, drawn to a PNG with the table beside it. Pillow draws it: models/ needs no plotting
library."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from PIL import Image, ImageDraw

from models.edsr import EDSRConfig
from models.train import TrainConfig
from models.train import main as train


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", action="append", required=True)
    parser.add_argument("--native-data", action="append", default=[])
    parser.add_argument("--val", action="append", required=True)
    parser.add_argument(
        "--layers",
        default="25,35,45,60",
        help="depths in the study's 'layers' (2 per block + 3), comma-separated",
    )
    parser.add_argument("--n-feats", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=48)
    parser.add_argument("--val-limit", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: every core)")
    parser.add_argument("--profile", default="400:2:webp-lossless")
    parser.add_argument("--out", default="runs/sweep")
    parser.add_argument("--note", default="", help="printed on the plot, e.g. 'CPU, short run'")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    rows = []
    for layers in (int(x) for x in args.layers.split(",")):
        blocks = EDSRConfig.from_layers(layers).n_resblocks
        config = TrainConfig(
            data=args.data,
            native_data=args.native_data,
            val=args.val,
            out=str(out / f"layers-{layers}"),
            profile=args.profile,
            n_resblocks=blocks,
            n_feats=args.n_feats,
            steps=args.steps,
            batch=args.batch,
            patch=args.patch,
            val_every=args.steps,
            val_limit=args.val_limit,
            name=f"sweep-{layers}",
            threads=args.threads,
        )
        train(replace(config))
        run_info = json.loads((Path(config.out) / "run.json").read_text())
        history = json.loads((Path(config.out) / "history.json").read_text())
        rows.append(
            {
                "layers": layers,
                "n_resblocks": blocks,
                "n_feats": args.n_feats,
                "steps": args.steps,
                "val_psnr_y": max(h["psnr_y"] for h in history),
                # Several validation sets: the mean, as the best step is chosen on the mean.
                "bicubic_psnr_y": sum(run_info["val_bicubic_psnr_y"].values())
                / len(run_info["val_bicubic_psnr_y"]),
                "train_minutes": round(history[-1]["seconds"] / 60, 1),
            }
        )
    (out / "sweep.json").write_text(json.dumps(rows, indent=2))
    title = f"EDSR depth sweep: {args.n_feats} features, {args.steps} steps each"
    if args.note:
        title += f" ({args.note})"
    plot(rows, out / "sweep.png", title)
    print(table(rows))
    print(f"plot: {out / 'sweep.png'}")
    return 0


def table(rows: list[dict]) -> str:
    lines = ["layers  blocks  val PSNR-Y  bicubic  gain   minutes"]
    for r in rows:
        lines.append(
            f"{r['layers']:>6}  {r['n_resblocks']:>6}  {r['val_psnr_y']:10.2f}  "
            f"{r['bicubic_psnr_y']:7.2f}  {r['val_psnr_y'] - r['bicubic_psnr_y']:+5.2f}  "
            f"{r['train_minutes']:7.1f}"
        )
    return "\n".join(lines)


def plot(rows: list[dict], path: Path, title: str) -> None:
    """Validation PSNR-Y against depth, bicubic as a dashed line, the table on the right."""
    width, height, left, top, plot_w, plot_h = 1000, 420, 70, 50, 520, 300
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((left, 15), title, fill="black")
    xs = [r["layers"] for r in rows]
    ys = [r["val_psnr_y"] for r in rows] + [rows[0]["bicubic_psnr_y"]]
    x_lo, x_hi = min(xs) - 2, max(xs) + 2
    y_lo, y_hi = min(ys) - 0.3, max(ys) + 0.3

    def to_px(x: float, y: float) -> tuple[float, float]:
        return (
            left + (x - x_lo) / (x_hi - x_lo) * plot_w,
            top + plot_h - (y - y_lo) / (y_hi - y_lo) * plot_h,
        )

    draw.rectangle((left, top, left + plot_w, top + plot_h), outline="black")
    for i in range(5):
        y = y_lo + (y_hi - y_lo) * i / 4
        px = to_px(x_lo, y)
        draw.text((8, px[1] - 6), f"{y:.2f}", fill="black")
    for x in xs:
        px = to_px(x, y_lo)
        draw.text((px[0] - 8, top + plot_h + 6), str(x), fill="black")
    draw.text((left + plot_w / 2 - 60, top + plot_h + 24), "depth (conv layers)", fill="black")
    draw.text((8, top - 20), "val PSNR-Y (dB)", fill="black")
    b = rows[0]["bicubic_psnr_y"]
    bx0, by = to_px(x_lo, b)
    for x in range(int(bx0), left + plot_w, 12):
        draw.line((x, by, x + 6, by), fill="gray")
    draw.text((left + 4, by - 14), "bicubic", fill="gray")
    points = [to_px(r["layers"], r["val_psnr_y"]) for r in rows]
    draw.line(points, fill="navy", width=2)
    for x, y in points:
        draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill="navy")
    draw.multiline_text((left + plot_w + 30, top), table(rows), fill="black", spacing=6)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
