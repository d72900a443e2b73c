"""Restorer: the inference engine the service calls (uint8 frames in, uint8 frames out)."""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from models import engines
from models.checkpoint import ModelInfo, load_model, network_sha256
from models.edsr import EDSR, EDSRConfig

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).parent / "weights"


def pick_device(device: str | None = None) -> torch.device:
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def receptive_radius(config: EDSRConfig) -> int:
    """LR pixels each side that can influence one output pixel: one per 3x3 conv at LR scale."""
    return 2 * config.n_resblocks + 3 + 1  # head, body conv, upsampler conv; +1 for the tail conv


class Restorer:
    """Loads a model once and restores batches of frames with it.

    Frames of more than `tile` x `tile` LR pixels are processed in overlapping tiles so memory
    stays bounded (a 640x360 frame runs whole: overlaps would cost 40% more work); with `overlap`
    at least the receptive radius, tiles give the same pixels as the whole frame. Tiles of one
    shape go through the network together. `run`, when given, replaces the torch network on the
    CPU (a bf16 or int8 engine from models.engines), and `backend` names it.

    `ensemble` > 1 is geometric self-ensemble (EDSR+, Lim et al. 2017): each frame also goes
    through the network flipped (2: left-right; 4: and upside down; 8: and transposed), each
    output is flipped back, and the outputs are averaged before rounding. It costs one pass per
    view and gains about 0.1 dB at 2 (see the model card); `engine` then says so.
    """

    def __init__(
        self,
        network: EDSR,
        info: ModelInfo,
        *,
        device: str | None = None,
        tile: int = 512,
        overlap: int | None = None,
        batch_size: int = 8,
        engine: str = "torch",
        run: engines.Engine | None = None,
        ensemble: int = 1,
    ) -> None:
        if ensemble not in ENSEMBLES:
            raise ValueError(f"ensemble must be one of {ENSEMBLES}, got {ensemble}")
        self.device = pick_device(device)
        # Half precision and channels-last only where they pay: tensor cores on CUDA.
        self.dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        self.network = network.eval().to(self.device, dtype=self.dtype)
        if self.device.type == "cuda":
            self.network = self.network.to(memory_format=torch.channels_last)
        self.info = info
        self.tile = tile
        self.overlap = receptive_radius(info.config) if overlap is None else overlap
        self.batch_size = batch_size
        self.backend = engine
        self.ensemble = ensemble
        self._run = run
        # What `auto` measured to choose between engines (ms per frame), when it had a choice.
        self.engine_ms: dict[str, float] = {}

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str = "default",
        *,
        engine: str = "torch",
        calibration: Path | None = None,
        cache: Path | None = None,
        **kwargs: object,
    ) -> Restorer:
        """A shipped model by name (models/weights/NAME.safetensors) or a model file by path.

        `engine`: "torch" (exact), an engine of models.engines, or "auto": on a CPU the faster
        of OpenVINO bf16 (only where the CPU computes bf16 natively) and the first int8 engine
        that is installed and agrees with torch, timed here on one frame (`engines.pick`: bf16
        unless int8 is clearly faster); else torch. An engine that cannot run falls back to
        torch with a logged reason."""
        path = resolve_model_path(name_or_path)
        network, info = load_model(path)
        restorer = cls(network, info, **kwargs)  # type: ignore[arg-type]
        if engine != "torch":
            restorer.use_engine(
                engine, calibration=calibration, cache=cache, shipped=engines.shipped_path(path)
            )
        return restorer

    def use_engine(
        self,
        engine: str,
        *,
        calibration: Path | None = None,
        cache: Path | None = None,
        shipped: Path | None = None,
    ) -> str:
        """Switch to `engine` (see from_pretrained); returns the engine now in use. `shipped`:
        the model's int8 file, used instead of calibrating when it matches these weights."""
        if engine not in (*engines.ENGINES, "auto"):
            raise ValueError(
                f"unknown engine {engine!r}; choose auto, {', '.join(engines.ENGINES)}"
            )
        self.engine_ms = {}
        if engine == "torch":
            self.backend, self._run = "torch", None
            return self.backend
        if self.device.type != "cpu":
            if engine != "auto":
                log.warning(
                    "engine %s runs on the CPU only; using torch on %s", engine, self.device
                )
            return self.backend

        def first_agreeing(*names: str) -> dict[str, engines.Engine]:
            return self._first_agreeing(names, calibration, cache, shipped)

        if engine != "auto":
            found = first_agreeing(engine)
        else:  # bf16 where the CPU computes it natively, and the first int8 engine that agrees
            found = first_agreeing("openvino-bf16") if engines.native_bf16() else {}
            found |= first_agreeing("openvino-int8", "onnx-int8")
        if len(found) > 1:
            frame = engines.synthetic_frames(self.scale, count=1)[0]
            self.engine_ms = engines.frame_ms(found, frame)
            chosen = engines.pick(self.engine_ms)
            log.info(
                "restore engine auto, %dx%d frame: %s; using %s",
                *frame.shape[1::-1],
                ", ".join(f"{name} {ms:.0f} ms" for name, ms in self.engine_ms.items()),
                chosen,
            )
            found = {chosen: found[chosen]}
        if found:
            ((self.backend, self._run),) = found.items()
        else:
            log.warning("engine %s: none runs and agrees here; using %s", engine, self.backend)
        return self.backend

    def _first_agreeing(
        self,
        names: tuple[str, ...],
        calibration: Path | None,
        cache: Path | None,
        shipped: Path | None,
    ) -> dict[str, engines.Engine]:
        """{name: engine} for the first of `names` that runs here and agrees with torch; empty
        (with a logged reason for each) when none does."""
        for name in names:
            try:
                if name in engines.FP32_ENGINES:
                    model = engines.fp32_model(self.network, self.weights_sha256, cache)
                else:
                    model = engines.quantized_model(
                        self.network,
                        self.weights_sha256,
                        calibration,
                        cache,
                        shipped=shipped,
                        degradation_id=self.degradation_id,
                    )
                run = engines.open_engine(name, model, torch.get_num_threads())
                agreement = engines.agreement_db(run, self.network, model)
            except Exception as exc:  # an optional engine never stops the service: torch remains
                log.warning("restore engine %s unavailable (%s)", name, exc)
                continue
            if agreement < engines.AGREEMENT_DB:
                log.warning(
                    "restore engine %s agrees with torch to %.1f dB only (need %.1f)",
                    name,
                    agreement,
                    engines.AGREEMENT_DB,
                )
                continue
            return {name: run}
        return {}

    @classmethod
    def from_config(
        cls,
        config: EDSRConfig,
        *,
        name: str = "untrained",
        degradation_id: str = "bicubic-aa-x2/webp-lossless/v1",
        seed: int = 0,
        **kwargs: object,
    ) -> Restorer:
        """An untrained network (random weights from `seed`): for tests and benchmarks."""
        torch.manual_seed(seed)
        network = EDSR(config)
        info = ModelInfo(name, config, degradation_id, network_sha256(network))
        return cls(network, info, **kwargs)  # type: ignore[arg-type]

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def weights_sha256(self) -> str:
        return self.info.weights_sha256

    @property
    def degradation_id(self) -> str:
        return self.info.degradation_id

    @property
    def scale(self) -> int:
        return self.info.config.scale

    @property
    def engine(self) -> str:
        """What makes the pixels, as provenance records it: the backend, and the self-ensemble
        when there is one ("openvino-int8+ensemble-x2")."""
        if self.ensemble == 1:
            return self.backend
        return f"{self.backend}+ensemble-x{self.ensemble}"

    @torch.inference_mode()
    def restore(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        """Restore HxWx3 uint8 frames to (H*scale)x(W*scale)x3 uint8 frames, in order."""
        results: list[np.ndarray | None] = [None] * len(frames)
        by_shape: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for i, frame in enumerate(frames):
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                raise ValueError(
                    f"frame {i}: expected HxWx3 uint8, got {frame.shape} {frame.dtype}"
                )
            h, w = frame.shape[:2]
            if h * w > self.tile * self.tile:
                results[i] = self._restore_tiled(frame)
            else:
                by_shape[frame.shape].append(i)
        for indices in by_shape.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                out = self._forward(np.stack([frames[i] for i in chunk]))
                for i, restored in zip(chunk, out, strict=True):
                    results[i] = restored
        return results  # type: ignore[return-value]

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 -> (N, H*s, W*s, 3) uint8: the mean over the ensemble's views,
        clamped and rounded (never wrapped)."""
        if self._run is not None:
            engine = self._run
            x = torch.from_numpy(engines.to_nchw(batch))

            def one_pass(t: torch.Tensor) -> torch.Tensor:
                return torch.from_numpy(engine(t.contiguous().numpy()))
        else:
            x = torch.tensor(batch, device=self.device).permute(0, 3, 1, 2).to(self.dtype)
            if self.device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)

            def one_pass(t: torch.Tensor) -> torch.Tensor:
                return self.network(t).float()

        views = VIEWS[: self.ensemble]
        out = one_pass(x)
        for v in views[1:]:
            out += _view(one_pass(_view(x, v)), v, inverse=True)
        if len(views) > 1:
            out /= len(views)
        y = out.clamp_(0, 255).round_().to(torch.uint8)
        return y.permute(0, 2, 3, 1).cpu().numpy()

    def _restore_tiled(self, frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        s, step, pad = self.scale, self.tile, self.overlap
        out = np.empty((h * s, w * s, 3), dtype=np.uint8)
        # Each tile grown by the overlap; tiles of one shape run as one batch.
        by_shape: dict[tuple[int, int], list[tuple[int, ...]]] = defaultdict(list)
        for top in range(0, h, step):
            for left in range(0, w, step):
                bottom, right = min(top + step, h), min(left + step, w)
                t0, l0 = max(top - pad, 0), max(left - pad, 0)
                t1, l1 = min(bottom + pad, h), min(right + pad, w)
                by_shape[(t1 - t0, l1 - l0)].append((top, left, bottom, right, t0, l0))
        for (th, tw), tiles in by_shape.items():
            for start in range(0, len(tiles), self.batch_size):
                chunk = tiles[start : start + self.batch_size]
                crops = np.stack([frame[t0 : t0 + th, l0 : l0 + tw] for *_, t0, l0 in chunk])
                for (top, left, bottom, right, t0, l0), restored in zip(
                    chunk, self._forward(crops), strict=True
                ):
                    # Keep only the tile's own pixels.
                    out[top * s : bottom * s, left * s : right * s] = restored[
                        (top - t0) * s : (bottom - t0) * s, (left - l0) * s : (right - l0) * s
                    ]
        return out


# Self-ensemble views as (transpose, flip rows, flip columns), in the order an ensemble of 2, 4
# or 8 takes them: the first four keep the frame's shape, so tiles and batches are unchanged.
View = tuple[bool, bool, bool]
VIEWS: tuple[View, ...] = tuple(
    (t, r, c) for t in (False, True) for r in (False, True) for c in (False, True)
)
ENSEMBLES = (1, 2, 4, 8)
SERVED_ENSEMBLE = 1  # the service's default (CCTV_RESTORE_ENSEMBLE), and `evaluate`'s


def _view(x: torch.Tensor, view: View, *, inverse: bool = False) -> torch.Tensor:
    """NCHW tensor in the view (or, with `inverse`, back from it)."""
    transpose, rows, cols = view
    if transpose and not inverse:
        x = x.transpose(2, 3)
    dims = [d for d, flip in ((2, rows), (3, cols)) if flip]
    if dims:
        x = x.flip(dims)
    if transpose and inverse:
        x = x.transpose(2, 3)
    return x


def resolve_model_path(name_or_path: str) -> Path:
    """A .safetensors path as given, else the shipped model of that name."""
    path = Path(name_or_path)
    if path.suffix != ".safetensors":
        path = WEIGHTS_DIR / f"{name_or_path}.safetensors"
    return path


def default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
