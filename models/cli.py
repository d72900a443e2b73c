"""Model commands `train`, `evaluate`, `sweep`, `models`, `pack`, `raw-weights`:
`cctv-archive CMD` or `python -m models CMD`."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from models.train import TrainConfig


def _add_train_args(parser: argparse.ArgumentParser) -> None:
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    parser.add_argument(
        "--data",
        action="append",
        default=[],
        help="HR image folder canonicalised by the profile (repeatable)",
    )
    parser.add_argument(
        "--native-data",
        action="append",
        default=[],
        help="HR image folder kept at its own size, e.g. T91 (repeatable)",
    )
    parser.add_argument(
        "--val",
        action="append",
        default=[],
        help="HR folder validated on, whole frames (repeatable; best step chosen on the mean)",
    )
    parser.add_argument(
        "--oversample",
        action="append",
        default=[],
        metavar="CAMERA=K",
        help="draw that camera's frames K times as often (repeatable), e.g. sg-2701=4",
    )
    helps = {
        "resume": "last.pt of an interrupted run: continue it exactly (same settings)",
        "init": "shipped model name or .safetensors: start from its weights, fresh schedule",
        "pack": "a `cctv-archive pack` file: its training and validation frames are used",
        "hardware": "what the run ran on, for the model card (default: device and threads)",
        "teacher": "distil: a shipped model name or .safetensors whose restorations replace the "
        "HR frames as targets (validation still uses the real HR frames)",
        "teacher_engine": "what runs the teacher on a CPU (auto, torch, ...; see evaluate)",
    }
    parser.add_argument("--loss", choices=["l1", "l2"], default=defaults["loss"])
    parser.add_argument(
        "--teacher-ensemble",
        type=int,
        choices=[1, 2, 4, 8],
        default=defaults["teacher_ensemble"],
        help="views the --teacher averages per frame (self-ensemble)",
    )
    names = ("out", "profile", "name", "device", "resume", "init", "hardware", "pack", "teacher")
    for name in (*names, "teacher_engine"):
        parser.add_argument(
            f"--{name.replace('_', '-')}", default=defaults[name], help=helps.get(name)
        )
    for name in (
        "n_resblocks",
        "n_feats",
        "patch",
        "late_patch",
        "batch",
        "steps",
        "val_every",
        "val_limit",
        "log_every",
        "seed",
        "threads",
        "prefetch",
    ):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=defaults[name])
    for name in ("res_scale", "lr", "lr_final_ratio", "ema", "late_from", "max_minutes"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=defaults[name])
    for name in ("channels_last", "compile", "bf16"):
        parser.add_argument(f"--{name.replace('_', '-')}", action="store_true")


def train_config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cctv-archive", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train_args(sub.add_parser("train", help="train an EDSR model on folders of HR images"))
    from models.evaluate import add_arguments as add_evaluate_args

    add_evaluate_args(sub.add_parser("evaluate", help="PSNR-Y/SSIM of a model and of bicubic"))
    from models.sweep import add_arguments as add_sweep_args

    add_sweep_args(sub.add_parser("sweep", help="train at several depths, plot PSNR vs depth"))
    listing = sub.add_parser("models", help="the shipped models: profile, size, validation figures")
    listing.add_argument("--json", action="store_true", help="print one JSON array")
    listing.add_argument("--ship", metavar="FILE", help="copy a trained model into the registry")
    listing.add_argument("--as", dest="ship_as", metavar="NAME", help="its name (with --ship)")
    listing.add_argument("--profile", help="the profile it was trained for, if not recorded")
    listing.add_argument(
        "--int8",
        metavar="NAME",
        help="quantise shipped model NAME to int8 and ship it beside its weights (NAME.int8.onnx)",
    )
    listing.add_argument(
        "--calibration",
        metavar="DIR",
        help="CCTV frames to calibrate --int8 on (default: ../shared/data/cctv/train)",
    )
    from models.pack import add_arguments as add_pack_args

    add_pack_args(sub.add_parser("pack", help="pack training frames into one file for a GPU run"))
    raw = sub.add_parser(
        "raw-weights", help="a run's raw (non-EMA) weights from its last.pt, validated, as a model"
    )
    raw.add_argument("checkpoint", help="the run's last.pt")
    raw.add_argument("--out", required=True, help="the .safetensors to write")
    raw.add_argument("--val", action="append", default=[], help="HR folder (default: the run's)")
    raw.add_argument("--val-limit", type=int, default=0)
    return parser


def list_models(as_json: bool) -> int:
    import json

    from models.registry import shipped_models, table

    models = shipped_models()
    if not as_json:
        print(table(models))
        return 0
    rows = [
        {
            "name": m.name,
            "title": m.title,
            "profile": m.profile,
            "degradation_id": m.degradation_id,
            "size_bytes": m.size_bytes,
            "parameters": m.parameters,
            "config": m.config.to_dict(),
            "validation_psnr_y": m.validation,
            "validation_gain": m.validation_gain,
            "legs": m.extra.get("legs", []),
        }
        for m in models
    ]
    print(json.dumps(rows, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "train":
        from models.train import main as train

        print(f"best model: {train(train_config_from_args(args))}")
        return 0
    if args.command == "evaluate":
        from models.evaluate import run

        return run(args)
    if args.command == "models":
        if args.ship:
            from pathlib import Path

            from models.registry import ship

            if not args.ship_as:
                raise SystemExit("--ship needs --as NAME")
            shipped = ship(Path(args.ship), args.ship_as, profile=args.profile)
            print(f"shipped {shipped.path} for profile {shipped.profile}")
        if args.int8:
            from pathlib import Path

            from models.engines import EngineUnavailable
            from models.registry import build_int8

            calibration = Path(args.calibration) if args.calibration else None
            try:
                built = build_int8(args.int8, calibration=calibration)
            except (ValueError, EngineUnavailable) as exc:
                raise SystemExit(f"--int8 {args.int8}: {exc}") from exc
            print(
                f"shipped {built.path}: calibrated on {built.calibration}, agrees with torch "
                f"to {built.agreement_db:.1f} dB"
            )
        return list_models(args.json)
    if args.command == "pack":
        from models.pack import run as pack

        return pack(args)
    if args.command == "raw-weights":
        from models.train import raw_weights

        scores = raw_weights(args.checkpoint, args.out, val=args.val, val_limit=args.val_limit)
        print(f"wrote {args.out}: " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
        return 0
    from models.sweep import run as sweep

    return sweep(args)


if __name__ == "__main__":
    sys.exit(main())
