"""The shipped models: which one restores which profile, and what their cards say.

Every `models/weights/*.safetensors` is a model the archive can serve. Its header names the
degradation it was trained on and the profile (HR size, scale, codec) its training frames were
made with; a model is chosen for a profile only when both match, so a frame is never restored by
a model trained on other pixels. `CCTV_MODEL` overrides the choice (and is still checked).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import torch

from models.checkpoint import FORMAT, load_model, read_metadata, save_model
from models.degradation import Profile, same_pixels
from models.edsr import EDSR, EDSRConfig
from models.engines import shipped_path
from models.restorer import WEIGHTS_DIR


class NoModelForProfile(LookupError):
    """No shipped model was trained for the profile asked for."""


@dataclass(frozen=True)
class ShippedModel:
    name: str  # the file's stem: what CCTV_MODEL names
    title: str  # the name in the header (e.g. cctv-edsr-16x48)
    path: Path
    profile: str  # the profile its training frames were made with
    degradation_id: str
    config: EDSRConfig
    size_bytes: int
    extra: dict[str, Any]

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in EDSR(self.config).parameters())

    @property
    def validation(self) -> dict[str, float]:
        """Validation PSNR-Y per set from the header (`val` since legs were recorded)."""
        if isinstance(self.extra.get("val"), dict):
            return {k: float(v) for k, v in self.extra["val"].items()}
        if "val_psnr_y" in self.extra:
            return {"val": float(self.extra["val_psnr_y"])}
        return {}

    @property
    def validation_gain(self) -> dict[str, float]:
        bicubic = self.extra.get("val_bicubic_psnr_y")
        if isinstance(bicubic, float | int):
            bicubic = {"val": bicubic}
        if not isinstance(bicubic, dict):
            return {}
        return {k: v - float(bicubic[k]) for k, v in self.validation.items() if k in bicubic}

    def serves(self, profile: Profile) -> bool:
        """Trained on frames made exactly like this profile's (same size rule, same pixels)."""
        trained = Profile.parse(self.profile)
        return trained.hr_size == profile.hr_size and same_pixels(
            self.degradation_id, profile.degradation_id
        )


def describe(path: Path) -> ShippedModel:
    metadata = read_metadata(path)
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{path} is not a cctv-archive model file")
    extra = json.loads(metadata.get("extra", "{}"))
    config = EDSRConfig(**json.loads(metadata["config"]))
    degradation_id = metadata["degradation_id"]
    # Models written before the profile was recorded were all trained at the default 400px size.
    codec = degradation_id.split("/")[1]
    profile = extra.get("profile") or f"400:{config.scale}:{codec}"
    return ShippedModel(
        name=path.stem,
        title=metadata["name"],
        path=path,
        profile=profile,
        degradation_id=degradation_id,
        config=config,
        size_bytes=path.stat().st_size,
        extra=extra,
    )


def ship(
    source: Path, name: str, *, profile: str | None = None, weights_dir: Path = WEIGHTS_DIR
) -> ShippedModel:
    """Copy a trained model file into the weights folder as NAME, recording the profile it was
    trained for (taken from its header when it has one; `profile` must agree with it)."""
    network, info = load_model(source)
    recorded = info.extra.get("profile")
    if recorded and profile and Profile.parse(recorded) != Profile.parse(profile):
        raise ValueError(f"{source} was trained for profile {recorded}, not {profile}")
    chosen = recorded or profile
    if not chosen:
        raise ValueError(f"{source} does not record its profile: give it")
    if not same_pixels(info.degradation_id, Profile.parse(chosen).degradation_id):
        raise ValueError(f"{source} was trained on {info.degradation_id}, not profile {chosen}")
    target = weights_dir / f"{name}.safetensors"
    save_model(
        target,
        network,
        name=info.name,
        degradation_id=info.degradation_id,
        extra={**info.extra, "profile": chosen},
    )
    # An int8 companion of the weights this replaces would only be ignored: remove it.
    shipped_path(target).unlink(missing_ok=True)
    return describe(target)


@dataclass(frozen=True)
class Int8Build:
    path: Path
    agreement_db: float
    calibration: str


def build_int8(
    name: str, *, calibration: Path | None = None, weights_dir: Path = WEIGHTS_DIR
) -> Int8Build:
    """Quantise shipped model NAME to int8 (calibrated on `calibration`, frames of its own
    degradation) and ship the file beside its weights, checked against torch first."""
    import tempfile

    from models import engines

    weights = weights_dir / f"{name}.safetensors"
    if not weights.exists():
        raise ValueError(f"no shipped model {name!r} in {weights_dir}")
    network, info = load_model(weights)
    sha256 = info.weights_sha256  # the file's, as the restorer that looks for it knows it
    with tempfile.TemporaryDirectory() as cache:
        built = engines.quantized_model(
            network, sha256, calibration, Path(cache), degradation_id=info.degradation_id
        )
        engine = "openvino-int8" if find_spec("openvino") else "onnx-int8"
        agreement = engines.agreement_db(
            engines.open_engine(engine, built, torch.get_num_threads()), network, built
        )
        if agreement < engines.AGREEMENT_DB:
            raise ValueError(
                f"the int8 model agrees with torch to {agreement:.1f} dB only "
                f"(need {engines.AGREEMENT_DB:.1f}): not shipped"
            )
        target = shipped_path(weights)
        partial = target.with_name(target.name + ".partial")
        shutil.copyfile(built, partial)
        os.replace(partial, target)
    return Int8Build(target, agreement, engines.metadata(target)[engines.META_CALIBRATION])


def shipped_models(weights_dir: Path = WEIGHTS_DIR) -> list[ShippedModel]:
    """Every model in the weights folder, `default` first, then by name."""
    paths = sorted(weights_dir.glob("*.safetensors"), key=lambda p: (p.stem != "default", p.stem))
    return [describe(p) for p in paths]


def model_for_profile(profile: Profile | str, weights_dir: Path = WEIGHTS_DIR) -> ShippedModel:
    """The shipped model trained for `profile` (`default` first when several are)."""
    profile = Profile.parse(profile) if isinstance(profile, str) else profile
    models = shipped_models(weights_dir)
    for model in models:
        if model.serves(profile):
            return model
    available = ", ".join(f"{m.name} ({m.profile})" for m in models) or "none"
    raise NoModelForProfile(
        f"no shipped model was trained for profile {profile} ({profile.degradation_id}); "
        f"shipped: {available}. Train one (cctv-archive train --profile {profile} ...) and set "
        "CCTV_MODEL to its .safetensors file"
    )


def table(models: list[ShippedModel]) -> str:
    """The `cctv-archive models` listing."""
    rows = [("name", "profile", "degradation", "size", "params", "validation PSNR-Y (gain)")]
    for m in models:
        gains = m.validation_gain
        figures = ", ".join(
            f"{k} {v:.2f}" + (f" ({gains[k]:+.2f})" if k in gains else "")
            for k, v in m.validation.items()
        )
        rows.append(
            (
                m.name,
                m.profile,
                m.degradation_id,
                f"{m.size_bytes / 1e6:.1f} MB",
                f"{m.parameters / 1e3:.0f}k",
                figures or "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1]
        for r in rows
    )
