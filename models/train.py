"""Train EDSR on the archive's own degradation (`cctv-archive train`, `python -m models train`).

Recipe of the EDSR paper and the study: L1 loss, Adam (0.9, 0.999), random LR patches with flips
and 90-degree rotations, learning-rate decay, validation on whole frames at a fixed interval.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from models.checkpoint import save_model
from models.data import Pair, PatchSampler, load_pairs
from models.degradation import Profile, bicubic_upscale
from models.edsr import EDSR, EDSRConfig
from models.metrics import psnr_y
from models.restorer import default_threads


@dataclass
class TrainConfig:
    data: list[str]  # HR folders, canonicalised by the profile (CCTV frames)
    val: str  # HR folder validated on, whole frames, same profile
    out: str = "runs/edsr"
    native_data: list[str] = field(default_factory=list)  # HR folders kept at native size (T91)
    profile: str = "400:2:webp-lossless"
    n_resblocks: int = 16
    n_feats: int = 48
    res_scale: float = 1.0
    patch: int = 48  # LR patch side; 48 is the EDSR paper's x2 choice (96x96 HR)
    batch: int = 16
    steps: int = 10_000
    # 2e-4 with a cosine decay to 1/100: a short run needs the larger start of the paper's range.
    lr: float = 2e-4
    lr_final_ratio: float = 0.01
    val_every: int = 500
    val_limit: int = 0  # validate on the first N frames only (0: all)
    log_every: int = 50
    seed: int = 0
    name: str = "edsr"
    device: str = ""
    threads: int = 0  # CPU threads (0: every core); 1 keeps a shared machine's run steady
    resume: str = ""


def upscale(network: EDSR, lr: np.ndarray, device: torch.device) -> np.ndarray:
    """One whole frame through the network, clamped and rounded to uint8."""
    x = torch.tensor(lr).permute(2, 0, 1)[None].float().to(device)
    with torch.no_grad(), autocast(device):
        y = network(x).float()
    return y.clamp(0, 255).round().to(torch.uint8)[0].permute(1, 2, 0).cpu().numpy()


def autocast(device: torch.device) -> torch.autocast:
    # bf16 on CUDA: tensor cores without loss scaling; the CPU runs fp32 (autocast disabled).
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def validate(network: EDSR, pairs: list[Pair], scale: int, device: torch.device) -> float:
    network.eval()
    scores = [psnr_y(upscale(network, p.lr, device), p.hr, scale) for p in pairs]
    network.train()
    return float(np.mean(scores))


def lr_factor(step: int, config: TrainConfig) -> float:
    """Cosine decay from 1 to lr_final_ratio over the run (a function of the step: resumable)."""
    progress = min(step / max(config.steps, 1), 1.0)
    r = config.lr_final_ratio
    return r + (1 - r) * 0.5 * (1 + math.cos(math.pi * progress))


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
    val_pairs = load_pairs(config.val, profile)
    if config.val_limit:
        val_pairs = val_pairs[: config.val_limit]
    bicubic = float(
        np.mean(
            [psnr_y(bicubic_upscale(p.lr, profile.scale), p.hr, profile.scale) for p in val_pairs]
        )
    )

    model_config = EDSRConfig(
        scale=profile.scale,
        n_resblocks=config.n_resblocks,
        n_feats=config.n_feats,
        res_scale=config.res_scale,
    )
    network = EDSR(model_config).to(device).train()
    optimizer = torch.optim.Adam(network.parameters(), lr=config.lr, betas=(0.9, 0.999), eps=1e-8)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, config))
    sampler = PatchSampler(pairs, profile.scale, config.patch, seed=config.seed)
    step, best, history = 0, -math.inf, []

    if config.resume:
        state = torch.load(config.resume, map_location=device, weights_only=False)
        network.load_state_dict(state["model"], strict=True)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        sampler.load_state_dict(state["sampler"])
        step, best, history = state["step"], state["best"], state["history"]
        torch.set_rng_state(state["torch_rng"])

    from torch.utils.tensorboard import SummaryWriter  # imported late: tensorboard is slow to load

    writer = SummaryWriter(str(out / "tb"))
    meta: dict[str, Any] = {
        "train_config": asdict(config),
        "degradation_id": profile.degradation_id,
        "train_images": len(pairs),
        "val_images": len(val_pairs),
        "val_bicubic_psnr_y": bicubic,
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    (out / "run.json").write_text(json.dumps(meta, indent=2))
    print(
        f"{len(pairs)} training images, {len(val_pairs)} validation frames "
        f"(bicubic {bicubic:.2f} dB), {model_config}, on {device}"
    )

    started = time.monotonic()
    bar = tqdm(total=config.steps, initial=step, desc="train", dynamic_ncols=True)
    running = 0.0
    while step < config.steps:
        lr_batch, hr_batch = sampler.batch(config.batch)  # (N,3,p,p), (N,3,p*s,p*s)
        lr_batch, hr_batch = lr_batch.to(device), hr_batch.to(device)
        with autocast(device):
            loss = torch.nn.functional.l1_loss(network(lr_batch).float(), hr_batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        step += 1
        running += loss.item()
        bar.update(1)
        if step % config.log_every == 0:
            writer.add_scalar("train/l1", running / config.log_every, step)
            writer.add_scalar("train/lr", scheduler.get_last_lr()[0], step)
            bar.set_postfix(l1=f"{running / config.log_every:.2f}", best=f"{best:.2f}")
            running = 0.0
        if step % config.val_every == 0 or step == config.steps:
            score = validate(network, val_pairs, profile.scale, device)
            elapsed = time.monotonic() - started
            history.append({"step": step, "psnr_y": score, "seconds": round(elapsed, 1)})
            writer.add_scalar("val/psnr_y", score, step)
            writer.add_scalar("val/gain_over_bicubic", score - bicubic, step)
            sample = upscale(network.eval(), val_pairs[0].lr, device)
            network.train()
            writer.add_image("val/sample", sample, step, dataformats="HWC")
            extra = {
                "step": step,
                "val_psnr_y": score,
                "val_bicubic_psnr_y": bicubic,
                "train_seconds": round(elapsed, 1),
            }
            if score > best:
                best = score
                save_model(
                    out / "best.safetensors",
                    network,
                    name=config.name,
                    degradation_id=profile.degradation_id,
                    extra=extra,
                )
            save_model(
                out / "last.safetensors",
                network,
                name=config.name,
                degradation_id=profile.degradation_id,
                extra=extra,
            )
            torch.save(
                {
                    "train_config": asdict(config),
                    "model": network.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "sampler": sampler.state_dict(),
                    "step": step,
                    "best": best,
                    "history": history,
                    "torch_rng": torch.get_rng_state(),
                },
                out / "last.pt",
            )
            (out / "history.json").write_text(json.dumps(history, indent=2))
            tqdm.write(
                f"step {step}: val PSNR-Y {score:.3f} dB ({score - bicubic:+.3f} vs bicubic)"
                f", best {best:.3f}, {elapsed / 60:.1f} min"
            )
    bar.close()
    writer.close()
    return out / "best.safetensors"
