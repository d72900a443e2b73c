"""The in-process pool: bounded, survives failing jobs, and batches frames that wait together."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from app.errors import QueueUnavailable
from app.restorations.batching import BatchingRestorer
from app.restorations.queue import InProcessQueue
from tests.app.conftest import wait_for


def test_pool_takes_jobs_up_to_its_bound_then_refuses_with_retry_after() -> None:
    release, started = threading.Event(), threading.Event()
    ran: list[str] = []

    def run(job_id: str) -> None:
        started.set()
        release.wait(10)
        ran.append(job_id)

    pool = InProcessQueue(run, workers=1, max_pending=2, retry_after_s=7)
    pool.start()
    try:
        pool.submit("a")
        assert started.wait(5)  # "a" is running; two more may wait
        pool.submit("b")
        pool.submit("c")
        with pytest.raises(QueueUnavailable) as refused:
            pool.submit("d")
        assert refused.value.retry_after == 7
        assert refused.value.headers == {"Retry-After": "7"}
        release.set()
        wait_for(lambda: ran == ["a", "b", "c"])
    finally:
        release.set()
        pool.stop()


def test_a_failing_job_is_reported_and_the_pool_goes_on() -> None:
    failures: list[tuple[str, str]] = []
    ran: list[str] = []

    def run(job_id: str) -> None:
        if job_id == "bad":
            raise ValueError("broken frame")
        ran.append(job_id)

    pool = InProcessQueue(
        run, workers=1, max_pending=4, on_error=lambda j, e: failures.append((j, str(e)))
    )
    pool.start()
    try:
        pool.submit("bad")
        pool.submit("good")
        wait_for(lambda: ran == ["good"])
        assert failures == [("bad", "broken frame")]
        pool.check()
    finally:
        pool.stop()


def test_a_stopped_pool_is_not_ready() -> None:
    pool = InProcessQueue(lambda job_id: None, workers=2, max_pending=1)
    pool.start()
    pool.stop()
    with pytest.raises(QueueUnavailable):
        pool.check()


class RecordingModel:
    name, weights_sha256, scale = "recording", "0" * 64, 2

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.gate = threading.Event()

    def restore(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        self.batches.append(len(frames))
        self.gate.wait(10)
        return [frame.repeat(2, 0).repeat(2, 1) for frame in frames]


def test_frames_waiting_together_go_through_the_model_as_one_batch() -> None:
    model = RecordingModel()
    batching = BatchingRestorer(model, max_batch=8, gather_s=0.05)  # type: ignore[arg-type]
    frames = [np.full((4, 4, 3), i, dtype=np.uint8) for i in range(4)]
    results: dict[int, list[np.ndarray]] = {}

    def call(i: int) -> None:
        results[i] = batching.restore([frames[i]])

    first = threading.Thread(target=call, args=(0,))
    first.start()
    wait_for(lambda: model.batches == [1])  # the model is busy with frame 0 ...
    others = [threading.Thread(target=call, args=(i,)) for i in (1, 2, 3)]
    for thread in others:
        thread.start()
    wait_for(lambda: batching._requests.qsize() == 3)  # ... while three more queue up
    model.gate.set()
    for thread in [first, *others]:
        thread.join(10)
    batching.close()

    assert model.batches == [1, 3]
    for i in range(4):  # every caller got its own frame back
        assert results[i][0].shape == (8, 8, 3) and (results[i][0] == i).all()
    assert batching.name == "recording"  # the wrapper looks like the model


def test_a_model_error_reaches_every_caller_of_the_batch() -> None:
    class Broken(RecordingModel):
        def restore(self, frames: list[np.ndarray]) -> list[np.ndarray]:
            raise MemoryError("out of GPU memory")

    batching = BatchingRestorer(Broken(), max_batch=4)  # type: ignore[arg-type]
    with pytest.raises(MemoryError):
        batching.restore([np.zeros((2, 2, 3), dtype=np.uint8)])
    batching.close()


def test_the_model_thread_runs_at_most_max_batch_frames_per_call() -> None:
    model = RecordingModel()
    model.gate.set()
    batching = BatchingRestorer(model, max_batch=2)  # type: ignore[arg-type]
    frames = [np.full((4, 4, 3), i, dtype=np.uint8) for i in range(5)]
    results = batching.restore(frames)
    batching.close()

    assert model.batches == [2, 2, 1]
    assert [int(result[0, 0, 0]) for result in results] == [0, 1, 2, 3, 4]  # in order


def test_resume_queues_unfinished_jobs_up_to_the_bound() -> None:
    pool = InProcessQueue(
        lambda job_id: None, workers=1, max_pending=2, unfinished=lambda: ["a", "b", "c"]
    )
    assert pool.resume() == 2  # "c" waits for the next start (the pool is not running yet)
    assert pool.pending == 2


def test_a_watcher_is_told_once_when_its_job_ends_done_or_failed() -> None:
    release = threading.Event()
    events: list[str] = []

    def run(job_id: str) -> None:
        release.wait(10)
        events.append(f"ran {job_id}")
        if job_id == "bad":
            raise ValueError("broken frame")

    pool = InProcessQueue(
        run,
        workers=1,
        max_pending=4,
        on_error=lambda job_id, exc: events.append(f"recorded {job_id} failed"),
    )
    pool.start()
    try:
        pool.submit("good")
        pool.submit("bad")
        assert pool.watch("good", lambda: events.append("told good")) is not None
        assert pool.watch("bad", lambda: events.append("told bad")) is not None
        release.set()
        wait_for(lambda: "told bad" in events)
        # Told after the job's outcome is recorded (a failure too), and only once.
        assert events == ["ran good", "told good", "ran bad", "recorded bad failed", "told bad"]
    finally:
        release.set()
        pool.stop()


def test_only_a_job_in_hand_can_be_watched_and_a_cancelled_watch_is_not_told() -> None:
    release = threading.Event()
    told: list[str] = []
    pool = InProcessQueue(lambda job_id: release.wait(10), workers=1, max_pending=2)
    pool.start()
    try:
        assert pool.watch("never-submitted", lambda: told.append("never")) is None
        pool.submit("a")
        cancel = pool.watch("a", lambda: told.append("cancelled"))
        assert cancel is not None
        pool.watch("a", lambda: told.append("kept"))
        cancel()
        release.set()
        wait_for(lambda: not pool.owns("a"))
        wait_for(lambda: told == ["kept"])
        assert pool.watch("a", lambda: told.append("late")) is None  # ended: look now
    finally:
        release.set()
        pool.stop()


def test_a_failing_watcher_does_not_stop_the_pool() -> None:
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("event loop is closed")

    release = threading.Event()

    def run(job_id: str) -> None:
        release.wait(10)
        ran.append(job_id)

    pool = InProcessQueue(run, workers=1, max_pending=2)
    pool.start()
    try:
        pool.submit("a")
        pool.watch("a", broken)
        pool.submit("b")
        release.set()
        wait_for(lambda: ran == ["a", "b"])
        pool.check()
    finally:
        release.set()
        pool.stop()
