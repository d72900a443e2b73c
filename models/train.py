"""Train EDSR on the archive's own degradation (`cctv-archive train`, `python -m models train`).

Recipe of the EDSR paper and the study: L1 loss, Adam (0.9, 0.999), random LR patches with flips
and 90-degree rotations, cosine learning-rate decay, validation on whole frames at a fixed interval.
Additions: an exponential moving average of the weights (with `ema` > 0 both the average and the
raw weights are validated and the better is kept), larger patches late in the run
(`late_patch`), warm restarts from a shipped or saved model (`init`), and distillation
(`teacher`: a model's self-ensemble restorations as the targets). Validation goes
through `Restorer`, the engine the service runs, so the figure measured is the figure served.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from models.checkpoint import ModelInfo, load_model, save_model
from models.data import Pair, PatchSampler, Prefetcher, camera_of, load_pairs
from models.degradation import Profile, bicubic_upscale, same_pixels
from models.edsr import EDSR, EDSRConfig
from models.metrics import psnr_y
from models.pack import read_pack
from models.restorer import Restorer, default_threads, resolve_model_path

# Changing one of these between a run and its resume would silently make a different run.
RESUME_FIXED = (
    "data",
    "native_data",
    "profile",
    "n_resblocks",
    "n_feats",
    "res_scale",
    "patch",
    "late_patch",
    "late_from",
    "batch",
    "steps",
    "lr",
    "lr_final_ratio",
    "ema",
    "loss",
    "seed",
    "init",
    "pack",
    "oversample",
    "teacher",
    "teacher_ensemble",
    "teacher_engine",
)


@dataclass
class TrainConfig:
    data: list[str]  # HR folders, canonicalised by the profile (CCTV frames)
    val: list[str] | str  # HR folders validated on (whole frames, same profile); best on the mean
    out: str = "runs/edsr"
    native_data: list[str] = field(default_factory=list)  # HR folders kept at native size (T91)
    profile: str = "400:2:webp-lossless"
    n_resblocks: int = 0  # 0: from --init, else 16
    n_feats: int = 0  # 0: from --init, else 48
    res_scale: float = 1.0
    patch: int = 48  # LR patch side; 48 is the EDSR paper's x2 choice (96x96 HR)
    late_patch: int = 0  # LR patch side from `late_from` of the run on (0: keep `patch`)
    late_from: float = 0.75
    batch: int = 16
    steps: int = 10_000
    # 2e-4 with a cosine decay to 1/100: a short run needs the larger start of the paper's range.
    lr: float = 2e-4
    lr_final_ratio: float = 0.01
    loss: str = "l1"  # "l1" (the EDSR recipe) or "l2" (PSNR's own objective, for a last leg)
    ema: float = 0.0  # EMA decay of the weights (0: off); 0.999 is the usual SR choice
    val_every: int = 500
    val_limit: int = 0  # validate on the first N frames of each set only (0: all)
    log_every: int = 50
    seed: int = 0
    name: str = "edsr"
    device: str = ""
    threads: int = 0  # CPU threads (0: every core); 1 keeps a shared machine's run steady
    channels_last: bool = False
    compile: bool = False  # torch.compile the training forward
    # bf16 autocast on the CPU as well (CUDA always trains in bf16): 4.8x the fp32 step on a CPU
    # with AMX, best with --channels-last (benchmarks/train_speed.py --bf16)
    bf16: bool = False
    resume: str = ""  # last.pt of an interrupted run: continue it exactly
    init: str = ""  # shipped model name or .safetensors: start from its weights, fresh schedule
    hardware: str = ""  # free text for the model card's leg list (default: device and threads)
    pack: str = ""  # a `cctv-archive pack` file: training and validation frames come from it
    prefetch: int = 0  # batches sampled ahead on a thread (0: in the loop); the same batches
    max_minutes: float = 0.0  # stop (validated and saved) once this much wall time has passed
    # "CAMERA=K": frames whose first path part is CAMERA are drawn K times as often (night cameras)
    oversample: list[str] = field(default_factory=list)
    # Distillation: a shipped model name or .safetensors whose restorations (a self-ensemble of
    # `teacher_ensemble` views, run by `teacher_engine`) replace the HR frames as training
    # targets. Validation still measures against the real HR frames.
    teacher: str = ""
    teacher_ensemble: int = 8
    teacher_engine: str = "auto"

    @property
    def val_folders(self) -> list[str]:
        return [self.val] if isinstance(self.val, str) else list(self.val)


class ResumeMismatch(ValueError):
    """A resumed run's configuration differs from the checkpoint's."""


def check_resumable(saved: dict[str, Any], config: TrainConfig) -> None:
    """Refuse a resume whose run-defining settings differ from the checkpoint, naming the field."""
    current = asdict(config)
    for name in RESUME_FIXED:
        if name in saved and saved[name] != current[name]:
            raise ResumeMismatch(
                f"cannot resume: {name} was {saved[name]!r} in the checkpoint, "
                f"now {current[name]!r}"
                " (start a new run, or --init from its weights for a warm restart)"
            )


def restore_rng(state: torch.Tensor) -> None:
    """torch's CPU generator takes a CPU ByteTensor; a checkpoint mapped to CUDA holds a GPU one."""
    torch.set_rng_state(state.detach().to("cpu", torch.uint8))


def atomic_torch_save(obj: object, path: Path) -> None:
    """Write to a temporary file, flush to disk, rename: a crash leaves the old file or the new."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def validate(
    network: EDSR, info: ModelInfo, pairs: list[Pair], device: torch.device
) -> tuple[float, np.ndarray]:
    """Mean PSNR-Y over whole frames through `Restorer` (on a copy: serving casts to fp16 on
    CUDA), and the first frame restored, for TensorBoard."""
    restorer = Restorer(copy.deepcopy(network).float(), info, device=str(device))
    restored = [restorer.restore([p.lr])[0] for p in pairs]
    scores = [psnr_y(r, p.hr, info.config.scale) for r, p in zip(restored, pairs, strict=True)]
    return float(np.mean(scores)), restored[0]


def oversampled(pairs: list[Pair], rules: list[str]) -> list[Pair]:
    """`pairs` with each frame of an oversampled camera listed K times (references, no copies)."""
    weights: dict[str, int] = {}
    for rule in rules:
        camera, _, times = rule.partition("=")
        if not camera or not times.isdigit() or int(times) < 1:
            raise ValueError(f"--oversample wants CAMERA=K, K a whole number >= 1, not {rule!r}")
        weights[camera] = int(times)
    found = {camera_of(p.name) for p in pairs}
    missing = sorted(set(weights) - found)
    if missing:
        raise ValueError(f"--oversample names cameras with no training frames: {missing[:5]}")
    return [p for p in pairs for _ in range(weights.get(camera_of(p.name), 1))]


def distilled(
    pairs: list[Pair], config: TrainConfig, profile: Profile, device: torch.device
) -> list[Pair]:
    """`pairs` with each HR frame replaced by the teacher's restoration of its LR frame: the
    student learns what the teacher serves with `teacher_ensemble` views, in one pass.

    A draft profile's student may learn from the teacher of the same profile without draft: the
    teacher then restores the frame as its own profile stores it (made from the same canonical
    HR), and the student learns to give that from the draft LR."""
    teacher = Restorer.from_pretrained(
        config.teacher,
        engine=config.teacher_engine,
        ensemble=config.teacher_ensemble,
        device=str(device),
    )
    own = profile
    if profile.draft and not same_pixels(teacher.degradation_id, profile.degradation_id):
        own = replace(profile, draft=False)
    if not same_pixels(teacher.degradation_id, own.degradation_id):
        raise ValueError(
            f"the --teacher model was trained on {teacher.degradation_id}, "
            f"not on profile {profile} ({profile.degradation_id})"
        )
    print(
        f"teacher {config.teacher} ({teacher.engine}, {config.teacher_ensemble} views) "
        f"restores {len(pairs)} training frames as targets"
        + (f", each as profile {own} stores it" if own is not profile else "")
    )

    def teacher_lr(pair: Pair) -> np.ndarray:
        return pair.lr if own is profile else own.degrade(Image.fromarray(pair.hr))

    it = tqdm(pairs, desc="teacher", leave=False)
    return [Pair(p.name, teacher.restore([teacher_lr(p)])[0], p.lr) for p in it]


def lr_factor(step: int, config: TrainConfig) -> float:
    """Cosine decay from 1 to lr_final_ratio over the run (a function of the step: resumable)."""
    progress = min(step / max(config.steps, 1), 1.0)
    r = config.lr_final_ratio
    return r + (1 - r) * 0.5 * (1 + math.cos(math.pi * progress))


def patch_at(step: int, config: TrainConfig) -> int:
    if config.late_patch and step >= config.late_from * config.steps:
        return config.late_patch
    return config.patch


def resolve_architecture(config: TrainConfig, scale: int) -> tuple[EDSR, list[dict[str, Any]]]:
    """The network to train and the legs it has already been trained for (from `init`)."""
    if not config.init:
        model_config = EDSRConfig(
            scale=scale,
            n_resblocks=config.n_resblocks or 16,
            n_feats=config.n_feats or 48,
            res_scale=config.res_scale,
        )
        return EDSR(model_config), []
    network, info = load_model(resolve_model_path(config.init))
    for name, wanted in (("n_resblocks", config.n_resblocks), ("n_feats", config.n_feats)):
        if wanted and wanted != getattr(info.config, name):
            raise ValueError(
                f"--{name.replace('_', '-')} {wanted} does not match the --init model "
                f"({getattr(info.config, name)}); leave it out to keep the model's"
            )
    if info.config.scale != scale:
        raise ValueError(f"the --init model is x{info.config.scale}, the profile x{scale}")
    legs = list(info.extra.get("legs", []))
    if not legs:  # a model from before legs were recorded: one leg from what its header says
        legs = [{"steps": info.extra.get("step"), "from": None, "note": "recorded before legs"}]
    return network, legs


def main(config: TrainConfig) -> Path:
    """Train, validate, checkpoint; returns the path of the best model file."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cpu":
        torch.set_num_threads(config.threads or default_threads())
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)

    profile = Profile.parse(config.profile)
    native = Profile(hr_size=None, scale=profile.scale, codec=profile.codec)
    pairs = [p for folder in config.data for p in load_pairs(folder, profile)]
    pairs += [p for folder in config.native_data for p in load_pairs(folder, native)]
    val_sets: dict[str, list[Pair]] = {}
    for folder in config.val_folders:
        val_sets[Path(folder).name or folder] = load_pairs(folder, profile)
    if config.pack:
        packed, packed_native, packed_val = read_pack(config.pack, config.profile)
        pairs += packed + packed_native
        val_sets.update(packed_val)
    if config.teacher:
        pairs = distilled(pairs, config, profile, device)
    pairs = oversampled(pairs, config.oversample)
    if not pairs or not val_sets:
        raise ValueError("no training frames or no validation frames: give --data and --val")
    val_sets = {name: ps[: config.val_limit or None] for name, ps in val_sets.items()}
    bicubic = {
        name: float(
            np.mean([psnr_y(bicubic_upscale(p.lr, profile.scale), p.hr, profile.scale) for p in ps])
        )
        for name, ps in val_sets.items()
    }

    losses = {"l1": torch.nn.functional.l1_loss, "l2": torch.nn.functional.mse_loss}
    if config.loss not in losses:
        raise ValueError(f"--loss must be one of {sorted(losses)}, not {config.loss!r}")
    objective = losses[config.loss]
    network, legs = resolve_architecture(config, profile.scale)
    network = network.to(device).train()
    if config.channels_last:
        network = network.to(memory_format=torch.channels_last)
    ema = copy.deepcopy(network).eval().requires_grad_(False) if config.ema else None
    forward = torch.compile(network) if config.compile else network
    optimizer = torch.optim.Adam(
        network.parameters(),
        lr=config.lr,
        betas=(0.9, 0.999),
        eps=1e-8,
        fused=device.type == "cuda",
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, config))
    sampler = PatchSampler(pairs, profile.scale, max(config.patch, config.late_patch), config.seed)
    step, best, history = 0, -math.inf, []

    if config.resume:
        # Everything to the CPU first: load_state_dict moves tensors where the parameters live,
        # and the RNG state must stay a CPU tensor.
        state = torch.load(config.resume, map_location="cpu", weights_only=False)
        check_resumable(state.get("train_config", {}), config)
        network.load_state_dict(state["model"], strict=True)
        if ema is not None:
            ema.load_state_dict(state["ema"], strict=True)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        sampler.load_state_dict(state["sampler"])
        step, best, history = state["step"], state["best"], state["history"]
        restore_rng(state["torch_rng"])

    from torch.utils.tensorboard import SummaryWriter  # imported late: tensorboard is slow to load

    writer = SummaryWriter(str(out / "tb"))
    hardware = config.hardware or (
        f"{device} ({torch.cuda.get_device_name(device)})"
        if device.type == "cuda"
        else f"cpu, {torch.get_num_threads()} threads"
    )
    meta: dict[str, Any] = {
        "train_config": asdict(config),
        "degradation_id": profile.degradation_id,
        "train_images": len(pairs),
        "val_images": {name: len(ps) for name, ps in val_sets.items()},
        "val_bicubic_psnr_y": bicubic,
        "device": str(device),
        "hardware": hardware,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "model": network.config.to_dict(),
        "parameters": sum(p.numel() for p in network.parameters()),
    }
    (out / "run.json").write_text(json.dumps(meta, indent=2))
    print(
        f"{len(pairs)} training images, validation on "
        + ", ".join(
            f"{n} ({len(ps)} frames, bicubic {bicubic[n]:.2f} dB)" for n, ps in val_sets.items()
        )
        + f", {network.config}, on {device}"
        + (f", from {config.init}" if config.init else "")
    )

    started = time.monotonic() - (history[-1]["seconds"] if history else 0.0)
    bar = tqdm(total=config.steps, initial=step, desc="train", dynamic_ncols=True)
    running: torch.Tensor | float = 0.0
    if ema is not None:
        ema_params, net_params = list(ema.parameters()), list(network.parameters())
    stop_at = config.steps
    cuda = device.type == "cuda"
    batches = (
        Prefetcher(
            sampler,
            config.batch,
            lambda s: patch_at(s, config),
            range(step, config.steps),
            config.prefetch,
            pin=cuda,
        )
        if config.prefetch
        else None
    )
    try:
        while step < stop_at:
            if batches is not None:
                lr_u8, hr_u8 = batches.next()
            else:
                lr_u8, hr_u8 = sampler.batch_uint8(config.batch, patch_at(step, config))
                if cuda:
                    lr_u8, hr_u8 = lr_u8.pin_memory(), hr_u8.pin_memory()
            # Pinned and asynchronous on a GPU: the host samples the next batch while it trains.
            lr_batch = lr_u8.to(device, non_blocking=True).float()
            hr_batch = hr_u8.to(device, non_blocking=True).float()
            if config.channels_last:
                lr_batch = lr_batch.contiguous(memory_format=torch.channels_last)
            with autocast(device, cpu_bf16=config.bf16):
                loss = objective(forward(lr_batch).float(), hr_batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            if ema is not None:
                with torch.no_grad():
                    torch._foreach_lerp_(ema_params, net_params, 1.0 - config.ema)
            step += 1
            running += loss.detach()  # a device tensor: read (a sync) only when logged
            bar.update(1)
            if step % config.log_every == 0:
                running = float(running) / config.log_every
                writer.add_scalar(f"train/{config.loss}", running, step)
                writer.add_scalar("train/lr", scheduler.get_last_lr()[0], step)
                bar.set_postfix({config.loss: f"{running:.2f}", "best": f"{best:.2f}"})
                running = 0.0
            out_of_time = (
                config.max_minutes and time.monotonic() - started > config.max_minutes * 60
            )
            if out_of_time:
                tqdm.write(f"stopping at step {step}: --max-minutes {config.max_minutes} reached")
                stop_at = step
            if step % config.val_every == 0 or step == config.steps or out_of_time:
                info = ModelInfo(config.name, network.config, profile.degradation_id, "")
                # With EMA both are measured and the better kept: early in a warm restart the
                # average still carries much of the starting weights and scores below the raw ones.
                candidates = {"raw": network} if ema is None else {"ema": ema, "raw": network}
                measured = {
                    kind: {
                        name: validate(weights, info, ps, device) for name, ps in val_sets.items()
                    }
                    for kind, weights in candidates.items()
                }
                kept = max(measured, key=lambda k: np.mean([v[0] for v in measured[k].values()]))
                shipped = candidates[kept]
                scores = {name: score for name, (score, _) in measured[kept].items()}
                for name, (score, sample) in measured[kept].items():
                    writer.add_scalar(f"val/{name}/psnr_y", score, step)
                    writer.add_scalar(
                        f"val/{name}/gain_over_bicubic", scores[name] - bicubic[name], step
                    )
                    writer.add_image(f"val/{name}/sample", sample, step, dataformats="HWC")
                mean = float(np.mean(list(scores.values())))
                mean_gain = float(np.mean([scores[n] - bicubic[n] for n in scores]))
                writer.add_scalar("val/mean/psnr_y", mean, step)
                writer.add_scalar("val/mean/gain_over_bicubic", mean_gain, step)
                elapsed = time.monotonic() - started
                history.append(
                    {
                        "step": step,
                        "psnr_y": mean,
                        "val": scores,
                        "gain": {n: scores[n] - bicubic[n] for n in scores},
                        "weights": kept,
                        **(
                            {"val_raw": {n: v[0] for n, v in measured["raw"].items()}}
                            if ema is not None
                            else {}
                        ),
                        "seconds": round(elapsed, 1),
                    }
                )
                leg = {
                    "from": config.init or None,
                    "steps": step,
                    "hardware": hardware,
                    "minutes": round(elapsed / 60, 1),
                    "val_psnr_y": scores,
                    "val_bicubic_psnr_y": bicubic,
                    "weights": kept,
                    "loss": config.loss,
                    "precision": "bf16" if device.type == "cuda" or config.bf16 else "fp32",
                    "batch": config.batch,
                    "patch": config.patch,
                    "lr": config.lr,
                }
                if config.teacher:
                    leg["teacher"] = (
                        f"{config.teacher}, {config.teacher_ensemble} views, "
                        f"{config.teacher_engine}"
                    )
                extra = {
                    "step": step,
                    "val_psnr_y": mean,
                    "val": scores,
                    "val_bicubic_psnr_y": bicubic,
                    "train_seconds": round(elapsed, 1),
                    "ema": config.ema,
                    "weights": kept,
                    "profile": str(profile),
                    "legs": [*legs, leg],
                }
                names = ["last"] + (["best"] if mean > best else [])
                best = max(best, mean)
                for kind in names:
                    save_model(
                        out / f"{kind}.safetensors",
                        shipped,
                        name=config.name,
                        degradation_id=profile.degradation_id,
                        extra=extra,
                    )
                atomic_torch_save(
                    {
                        "train_config": asdict(config),
                        "model": network.state_dict(),
                        "ema": ema.state_dict() if ema is not None else None,
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "sampler": (batches or sampler).state_dict(),
                        "step": step,
                        "best": best,
                        "history": history,
                        "torch_rng": torch.get_rng_state(),
                    },
                    out / "last.pt",
                )
                (out / "history.json").write_text(json.dumps(history, indent=2))
                tqdm.write(
                    f"step {step} ({kept} weights): "
                    + ", ".join(f"{n} {s:.3f} ({s - bicubic[n]:+.3f})" for n, s in scores.items())
                    + f", mean {mean:.3f}, best {best:.3f}, {elapsed / 60:.1f} min"
                )
    finally:
        if batches is not None:
            batches.close()  # also when the loop raises: no thread left behind
    bar.close()
    writer.close()
    return out / "best.safetensors"


def raw_weights(
    checkpoint: str | Path, out: str | Path, *, val: list[str] | None = None, val_limit: int = 0
) -> dict[str, float]:
    """Write the raw (non-EMA) weights of a run's `last.pt` as a model file, validated like the
    run validates (its profile, through `Restorer`), with the run's header and these figures.

    For runs made before training compared the two: their `best`/`last` files hold the EMA."""
    checkpoint = Path(checkpoint)
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    run = state["train_config"]
    network, info = load_model(checkpoint.parent / "last.safetensors")
    network.load_state_dict(state["model"], strict=True)
    profile = Profile.parse(run["profile"])
    folders = val or ([run["val"]] if isinstance(run["val"], str) else list(run["val"]))
    scores = {}
    for folder in folders:
        pairs = load_pairs(folder, profile, progress=False)[: val_limit or None]
        scores[Path(folder).name or folder] = validate(network, info, pairs, torch.device("cpu"))[0]
    extra = dict(info.extra)
    legs = [dict(leg) for leg in extra.get("legs", [])]
    if legs:
        legs[-1].update(val_psnr_y=scores, weights="raw")
    extra.update(
        val=scores, val_psnr_y=float(np.mean(list(scores.values()))), weights="raw", legs=legs
    )
    extra["step"] = state["step"]
    save_model(out, network, name=info.name, degradation_id=info.degradation_id, extra=extra)
    return scores


def autocast(device: torch.device, *, cpu_bf16: bool = False) -> torch.autocast:
    """bf16 on CUDA (tensor cores, no loss scaling); on the CPU fp32 unless `cpu_bf16` (AMX
    tiles make bf16 convolutions several times faster than fp32 where the CPU has them)."""
    enabled = device.type == "cuda" or (device.type == "cpu" and cpu_bf16)
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)
