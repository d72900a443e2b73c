"""Model files: safetensors weights with everything needed to rebuild the network in the header.

A model file is self-describing (architecture config, degradation id, training step, metrics) and
is always loaded strictly: a missing or unexpected tensor is an error, never silently ignored.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from models.edsr import EDSR, EDSRConfig

FORMAT = "cctv-archive/edsr/v1"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    config: EDSRConfig
    degradation_id: str
    weights_sha256: str
    extra: dict[str, Any] = field(default_factory=dict)


def save_model(
    path: str | Path,
    network: EDSR,
    *,
    name: str,
    degradation_id: str,
    extra: dict[str, Any] | None = None,
) -> str:
    """Write the network to `path` (safetensors, fp32) and return the file's SHA-256."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().float().cpu().contiguous() for k, v in network.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "name": name,
        "config": json.dumps(network.config.to_dict()),
        "degradation_id": degradation_id,
        "extra": json.dumps(extra or {}),
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    tmp.replace(path)
    return file_sha256(path)


def load_model(path: str | Path) -> tuple[EDSR, ModelInfo]:
    """Rebuild the network from a model file, strictly."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    metadata = read_metadata(path)
    if metadata.get("format") != FORMAT:
        raise ValueError(
            f"{path} is not a cctv-archive model file (format {metadata.get('format')!r})"
        )
    config = EDSRConfig(**json.loads(metadata["config"]))
    network = EDSR(config)
    network.load_state_dict(load_file(str(path)), strict=True)
    info = ModelInfo(
        name=metadata["name"],
        config=config,
        degradation_id=metadata["degradation_id"],
        weights_sha256=file_sha256(path),
        extra=json.loads(metadata.get("extra", "{}")),
    )
    return network.eval(), info


def read_metadata(path: Path) -> dict[str, str]:
    # safetensors layout: 8-byte little-endian header length, then a JSON header.
    with path.open("rb") as f:
        size = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(size))
    return header.get("__metadata__", {})


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def network_sha256(network: torch.nn.Module) -> str:
    """A stable digest of in-memory weights, for models that have no file."""
    digest = hashlib.sha256()
    for key, value in sorted(network.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
