"""`cctv-archive pack`: the training and validation frames in one compact file for a GPU run.

The GPU machine sees only the repository checkout (64 MiB with everything carried), not the data
folder. The pack holds each HR frame already canonicalised to the training size (400x400 for the
default profile), WebP lossless (the same pixels), in a ZIP with a manifest; LR frames are not
stored: training degrades the HR frames through the profile, as always. When every frame does not
fit the byte budget, training frames are taken round-robin across cameras, evenly spaced within
each camera, so every camera is in the pack; the manifest says what was left out.
"""

from __future__ import annotations

import argparse
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from models.data import Pair, camera_of, find_images
from models.degradation import Profile

MANIFEST = "manifest.json"
PACK_FORMAT = "cctv-archive/pack/v1"


@dataclass(frozen=True)
class Frame:
    group: str  # "train", "native", or "val/<set name>"
    name: str  # path under its folder, e.g. cam-5/001.jpg
    data: bytes  # the canonical HR frame, WebP lossless


def encode_hr(image: Image.Image) -> bytes:
    out = io.BytesIO()
    # Lossless at any effort (same pixels); method 4 is within 0.1% of method 6's size at 1/50
    # of its time (0.17 s against 8.6 s for a 400x400 CCTV frame, measured here).
    image.save(out, format="WEBP", lossless=True, quality=80, method=4, exact=True)
    return out.getvalue()


def _frames(folder: str, group: str, profile: Profile) -> list[Frame]:
    root = Path(folder)
    frames = []
    for path in find_images(root):
        with Image.open(path) as image:
            hr = profile.canonicalise(image)
        frames.append(Frame(group, str(path.relative_to(root)), encode_hr(hr)))
    return frames


def _packable(profile: Profile) -> Profile:
    if profile.draft:
        raise ValueError(
            f"profile {profile} makes its LR frames from the original files, which a pack does "
            "not hold (only the canonical HR): train it with `cctv-archive train --data`"
        )
    return profile


def _round_robin(frames: list[Frame]) -> list[Frame]:
    """Frames ordered so any prefix is spread over every camera (first path part), each camera's
    frames evenly spaced: 0, 1/2, 1/4, 3/4... of its sequence."""
    cameras: dict[str, list[Frame]] = {}
    for f in frames:
        cameras.setdefault(camera_of(f.name), []).append(f)

    def spread(items: list[Frame]) -> list[Frame]:
        order, seen = [], set()
        step = len(items)
        while len(order) < len(items):
            for i in range(0, len(items), max(step, 1)):
                if i not in seen:
                    seen.add(i)
                    order.append(items[i])
            step //= 2
        return order

    queues = [spread(v) for _, v in sorted(cameras.items())]
    out = []
    for i in range(max((len(q) for q in queues), default=0)):
        out += [q[i] for q in queues if i < len(q)]
    return out


def pack(
    out: Path,
    *,
    data: list[str],
    val: list[str],
    native_data: list[str] | None = None,
    profile: str = "400:2:webp-lossless",
    max_bytes: int = 56 * 1024 * 1024,
    val_limit: int = 0,
    whole: list[str] | None = None,
) -> dict:
    """Write the pack; returns its manifest. Validation frames go in whole, or `val_limit` of
    each set spread over its cameras (the full sets are for `cctv-archive evaluate` afterwards).
    The training frames of the cameras named in `whole` go in before any other (all of them,
    budget allowing): the scarce ones, such as night cameras, are not thinned like the rest."""
    chosen = _packable(Profile.parse(profile))
    native = Profile(hr_size=None, scale=chosen.scale, codec=chosen.codec)
    val_frames = []
    for folder in val:
        frames = _round_robin(_frames(folder, f"val/{Path(folder).name}", chosen))
        val_frames += frames[: val_limit or None]
    budget = max_bytes - sum(len(f.data) for f in val_frames)
    if budget <= 0:
        raise ValueError(f"the validation frames alone exceed {max_bytes} bytes")
    candidates = _round_robin(
        [f for folder in data for f in _frames(folder, "train", chosen)]
        + [f for folder in native_data or [] for f in _frames(folder, "native", native)]
    )
    first = set(whole or [])
    unknown = first - {camera_of(f.name) for f in candidates}
    if unknown:
        raise ValueError(f"--whole names cameras with no training frames: {sorted(unknown)[:5]}")
    candidates.sort(key=lambda f: camera_of(f.name) not in first)  # stable: order kept
    kept, used = [], 0
    for frame in candidates:
        if used + len(frame.data) <= budget:
            kept.append(frame)
            used += len(frame.data)
    kept_ids = {id(f) for f in kept}
    manifest = {
        "format": PACK_FORMAT,
        "profile": profile,
        "sources": {"data": data, "native_data": native_data or [], "val": val},
        "frames": {
            group: sorted(f.name for f in [*kept, *val_frames] if f.group == group)
            for group in sorted({f.group for f in [*kept, *val_frames]})
        },
        "left_out": sorted(f"{f.group}/{f.name}" for f in candidates if id(f) not in kept_ids),
        "bytes": used + sum(len(f.data) for f in val_frames),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(MANIFEST, json.dumps(manifest, indent=1))
        for f in [*kept, *val_frames]:
            z.writestr(f"{f.group}/{f.name}.webp", f.data)
    tmp.replace(out)
    return manifest


def read_pack(
    path: str | Path, profile: str
) -> tuple[list[Pair], list[Pair], dict[str, list[Pair]]]:
    """(canonical-size training pairs, native-size training pairs, validation sets) degraded
    through `profile` (which must be the one the pack was made for: the HR size is baked in)."""
    chosen = _packable(Profile.parse(profile))
    native = Profile(hr_size=None, scale=chosen.scale, codec=chosen.codec)
    with zipfile.ZipFile(path) as z:
        manifest = json.loads(z.read(MANIFEST))
        if manifest.get("format") != PACK_FORMAT:
            raise ValueError(f"{path} is not a cctv-archive training pack")
        made = Profile.parse(manifest["profile"])
        if made.hr_size != chosen.hr_size or made.scale != chosen.scale:
            raise ValueError(
                f"{path} was packed for profile {made}; training profile {chosen} needs "
                "frames of another size: pack again with --profile"
            )
        train, natives, val = [], [], {}
        for group, names in manifest["frames"].items():
            degrade = native if group == "native" else chosen
            pairs = []
            for name in names:
                with Image.open(io.BytesIO(z.read(f"{group}/{name}.webp"))) as image:
                    hr = image.convert("RGB")
                pairs.append(Pair(name, np.asarray(hr, dtype=np.uint8), degrade.degrade(hr)))
            if group == "train":
                train = pairs
            elif group == "native":
                natives = pairs
            else:
                val[group.removeprefix("val/")] = pairs
    return train, natives, val


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", action="append", required=True, help="HR folder (repeatable)")
    parser.add_argument("--native-data", action="append", default=[], help="kept at own size")
    parser.add_argument("--val", action="append", required=True, help="validation folder")
    parser.add_argument("--profile", default="400:2:webp-lossless")
    parser.add_argument("--max-mib", type=float, default=56.0, help="size budget of the pack")
    parser.add_argument("--out", required=True, help="the .zip to write")
    parser.add_argument(
        "--val-limit", type=int, default=0, help="frames of each validation set (0: all)"
    )
    parser.add_argument(
        "--whole",
        action="append",
        default=[],
        metavar="CAMERA",
        help="put every training frame of this camera in first (repeatable), e.g. sg-2701",
    )


def run(args: argparse.Namespace) -> int:
    manifest = pack(
        Path(args.out),
        data=args.data,
        val=args.val,
        native_data=args.native_data,
        profile=args.profile,
        max_bytes=int(args.max_mib * 1024 * 1024),
        val_limit=args.val_limit,
        whole=args.whole,
    )
    counts = ", ".join(f"{g} {len(n)}" for g, n in manifest["frames"].items())
    print(
        f"{args.out}: {manifest['bytes'] / 2**20:.1f} MiB, frames: {counts}; "
        f"{len(manifest['left_out'])} training frames left out to fit {args.max_mib} MiB"
    )
    return 0
