"""Model commands `train`, `evaluate`, `sweep`: `cctv-archive CMD` or `python -m models CMD`."""

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
        required=True,
        help="HR image folder canonicalised by the profile (repeatable)",
    )
    parser.add_argument(
        "--native-data",
        action="append",
        default=[],
        help="HR image folder kept at its own size, e.g. T91 (repeatable)",
    )
    parser.add_argument("--val", required=True, help="HR folder validated on (whole frames)")
    for name in ("out", "profile", "name", "device", "resume"):
        parser.add_argument(f"--{name.replace('_', '-')}", default=defaults[name])
    for name in (
        "n_resblocks",
        "n_feats",
        "patch",
        "batch",
        "steps",
        "val_every",
        "val_limit",
        "log_every",
        "seed",
        "threads",
    ):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=defaults[name])
    for name in ("res_scale", "lr", "lr_final_ratio"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=defaults[name])


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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "train":
        from models.train import main as train

        print(f"best model: {train(train_config_from_args(args))}")
        return 0
    if args.command == "evaluate":
        from models.evaluate import run

        return run(args)
    from models.sweep import run as sweep

    return sweep(args)


if __name__ == "__main__":
    sys.exit(main())
