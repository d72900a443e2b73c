"""The one owner of the model in a process: every restore goes through one model thread.

The in-process pool's threads, on-demand restores and the housekeeping thread all call
`restore()` here, never the network itself; the model thread takes whatever has queued up and
runs it in chunks of `max_batch` frames (CCTV_RESTORE_BATCH_SIZE), so several one-frame jobs
arriving together cost one forward pass and the network is only ever used from one thread.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future

import numpy as np

from app.restorations.model import RestoreModel

Request = tuple[list[np.ndarray], Future[list[np.ndarray]]]


class BatchingRestorer:
    """A RestoreModel that batches the frames of concurrent callers through one model thread."""

    def __init__(self, restorer: RestoreModel, *, max_batch: int, gather_s: float = 0.01) -> None:
        self.restorer = restorer
        self.max_batch = max_batch
        self.gather_s = gather_s
        self._requests: queue.Queue[Request | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="restore-model", daemon=True)
        self._thread.start()

    @property
    def name(self) -> str:
        return self.restorer.name

    @property
    def weights_sha256(self) -> str:
        return self.restorer.weights_sha256

    @property
    def degradation_id(self) -> str:
        return self.restorer.degradation_id

    @property
    def scale(self) -> int:
        return self.restorer.scale

    @property
    def device(self) -> object:
        return getattr(self.restorer, "device", "cpu")

    @property
    def engine(self) -> str:
        return getattr(self.restorer, "engine", "torch")

    def restore(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        if not frames:
            return []
        future: Future[list[np.ndarray]] = Future()
        self._requests.put((frames, future))
        return future.result()

    def close(self) -> None:
        self._requests.put(None)
        self._thread.join(5)

    def _loop(self) -> None:
        while True:
            first = self._requests.get()
            if first is None:
                return
            batch = [first]
            size = len(first[0])
            closing = False
            while size < self.max_batch:
                try:
                    more = self._requests.get(timeout=self.gather_s)
                except queue.Empty:
                    break
                if more is None:
                    closing = True
                    break
                batch.append(more)
                size += len(more[0])
            self._run(batch)
            if closing:
                return

    def _run(self, batch: list[Request]) -> None:
        frames = [frame for request, _ in batch for frame in request]
        try:
            outputs: list[np.ndarray] = []
            for start in range(0, len(frames), self.max_batch):
                outputs.extend(self.restorer.restore(frames[start : start + self.max_batch]))
        except BaseException as exc:
            for _, future in batch:
                future.set_exception(exc)
            return
        start = 0
        for request, future in batch:
            future.set_result(outputs[start : start + len(request)])
            start += len(request)
