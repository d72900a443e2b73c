"""Training and evaluation pairs, made by the archive's own degradation."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from models.degradation import Profile

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}


@dataclass(frozen=True)
class Pair:
    name: str
    hr: np.ndarray  # (H, W, 3) uint8, canonical HR
    lr: np.ndarray  # (H/s, W/s, 3) uint8, exactly what the archive stores


def find_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {folder}")
    return paths


def make_pair(path: Path, profile: Profile, root: Path | None = None) -> Pair:
    with Image.open(path) as image:
        hr = profile.canonicalise(image)
    name = str(path.relative_to(root)) if root else path.name
    if not profile.draft:
        return Pair(name, np.asarray(hr, dtype=np.uint8), profile.degrade(hr))
    with Image.open(path) as image:  # a second decode, reduced as ingest reduces it
        full = image.size
        reduced_by = profile.start_draft(image)
        lr = profile.draft_lr(image.convert("RGB"), full, reduced_by)
    return Pair(name, np.asarray(hr, dtype=np.uint8), profile.round_trip(lr))


def load_pairs(folder: str | Path, profile: Profile, *, progress: bool = True) -> list[Pair]:
    paths = find_images(folder)
    it: Iterable[Path] = tqdm(paths, desc=f"loading {folder}", disable=not progress, leave=False)
    return [make_pair(p, profile, Path(folder)) for p in it]


def camera_of(name: str) -> str:
    """The camera of a frame named by its path under a data folder (`cam-5/001.jpg`): the first
    path part (a frame directly in the folder is its own camera)."""
    return name.split("/")[0]


class PatchSampler:
    """Random aligned LR/HR patches with flips and 90-degree rotations (the EDSR recipe).

    Sampling is driven by one torch.Generator so a resumed run draws the same patches.
    """

    def __init__(self, pairs: list[Pair], scale: int, patch: int, seed: int = 0) -> None:
        usable = [p for p in pairs if min(p.lr.shape[:2]) >= patch]
        if not usable:
            raise ValueError(f"every training image is smaller than the {patch}px LR patch")
        if len(usable) < len(pairs):
            print(f"skipping {len(pairs) - len(usable)} images smaller than the {patch}px LR patch")
        self.pairs, self.scale, self.patch = usable, scale, patch
        self.generator = torch.Generator().manual_seed(seed)

    def _randint(self, high: int) -> int:
        return int(torch.randint(high, (1,), generator=self.generator))

    def batch(self, size: int, patch: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, p, p) LR and (N, 3, p*s, p*s) HR float tensors in [0, 255]; `patch` (at most
        the sampler's) overrides the side for this batch."""
        lr, hr = self.batch_uint8(size, patch)
        return lr.float(), hr.float()

    def batch_uint8(self, size: int, patch: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """`batch` as uint8 (a quarter of the bytes to copy to a GPU; convert there)."""
        s, p = self.scale, min(patch or self.patch, self.patch)
        lrs, hrs = [], []
        for _ in range(size):
            pair = self.pairs[self._randint(len(self.pairs))]
            h, w = pair.lr.shape[:2]
            y, x = self._randint(h - p + 1), self._randint(w - p + 1)
            lr = pair.lr[y : y + p, x : x + p]
            hr = pair.hr[y * s : (y + p) * s, x * s : (x + p) * s]
            flips = int(torch.randint(8, (1,), generator=self.generator))
            if flips & 1:
                lr, hr = lr[:, ::-1], hr[:, ::-1]
            if flips & 2:
                lr, hr = lr[::-1], hr[::-1]
            if flips & 4:
                lr, hr = lr.transpose(1, 0, 2), hr.transpose(1, 0, 2)
            lrs.append(np.ascontiguousarray(lr))
            hrs.append(np.ascontiguousarray(hr))
        to_tensor = lambda a: torch.from_numpy(np.stack(a)).permute(0, 3, 1, 2)  # noqa: E731
        return to_tensor(lrs), to_tensor(hrs)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.generator.set_state(state["generator"])


class Prefetcher:
    """`PatchSampler.batch_uint8` run `depth` batches ahead on a thread, so the host samples
    while a GPU trains (numpy and torch copies release the GIL). The batches are the ones the
    sampler would give in order, and `state_dict` is the sampler's state before the next batch
    handed out: a run resumed from it draws the same batches as one that never stopped."""

    def __init__(
        self,
        sampler: PatchSampler,
        size: int,
        patch_at: Callable[[int], int],
        steps: range,
        depth: int,
        *,
        pin: bool = False,
    ) -> None:
        self._state = sampler.state_dict()
        self._queue: queue.Queue[tuple[torch.Tensor, torch.Tensor, dict] | BaseException] = (
            queue.Queue(maxsize=max(depth, 1))
        )
        self._stop = threading.Event()

        def produce() -> None:
            try:
                for step in steps:
                    lr, hr = sampler.batch_uint8(size, patch_at(step))
                    if pin:
                        lr, hr = lr.pin_memory(), hr.pin_memory()
                    if not self._put((lr, hr, sampler.state_dict())):
                        return
            except BaseException as error:  # handed to the training loop, raised there
                self._put(error)

        self._thread = threading.Thread(target=produce, name="patch-prefetch", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)  # type: ignore[arg-type]
                return True
            except queue.Full:
                continue
        return False

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        lr, hr, self._state = item
        return lr, hr

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self._state

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
