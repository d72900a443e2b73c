"""/metrics: parses with the Prometheus client's parser, needs a read key, and moves when frames
are ingested, refused and restored; a worker's pool process serves its own."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from app.observability.metrics import serve_worker_metrics
from tests.app.conftest import Archive, wait_for
from tests.app.images import image_bytes

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(archive: Archive) -> Samples:
    response = archive.get("/metrics", key="investigator")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


def delta(before: Samples, after: Samples) -> Callable[..., float]:
    def change(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    return change


def test_ingest_moves_the_counters_and_the_archive_gauges(archive: Archive) -> None:
    data = image_bytes(seed=11)
    before = scrape(archive)
    frame = archive.upload(data).json()
    archive.upload(data)  # the same frame again: nothing stored
    after = scrape(archive)
    change = delta(before, after)
    assert change("cctv_frames_ingested_total") == 1
    assert change("cctv_frames_repeated_total") == 1
    assert change("cctv_ingest_uploaded_bytes_total") == len(data)
    assert change("cctv_ingest_stored_bytes_total") == frame["stored"]["bytes"]
    assert after[("cctv_archive_frames", ())] == 1
    assert after[("cctv_archive_bytes", (("kind", "uploaded"),))] == len(data)
    assert after[("cctv_archive_bytes", (("kind", "stored"),))] == frame["stored"]["bytes"]


def test_refused_uploads_are_counted_by_reason(archive: Archive) -> None:
    before = scrape(archive)
    assert archive.upload(b"GIF89a not a frame").status_code == 415
    assert archive.upload(b"\x89PNG\r\n\x1a\n" + b"\0" * 40).status_code in (415, 422)
    no_key = archive.client.post("/v1/frames", files={"file": ("f", b"x")})
    assert no_key.status_code == 401
    change = delta(before, scrape(archive))
    assert change("cctv_frames_rejected_total", reason="unsupported_media_type") >= 1
    assert change("cctv_frames_rejected_total", reason="unauthenticated") == 1
    assert (
        sum(
            change("cctv_frames_rejected_total", reason=r)
            for r in ("unsupported_media_type", "corrupt_image", "unauthenticated")
        )
        == 3
    )
    assert change("cctv_frames_ingested_total") == 0


def test_restores_move_the_cache_job_and_latency_metrics(archive: Archive) -> None:
    frame_id = archive.frame_id(image_bytes(seed=12))
    before = scrape(archive)
    assert archive.get(f"/v1/frames/{frame_id}/restored").status_code == 200  # miss: restored
    assert archive.get(f"/v1/frames/{frame_id}/restored").status_code == 200  # hit
    after = scrape(archive)
    change = delta(before, after)
    assert change("cctv_restore_cache_requests_total", result="miss") == 1
    assert change("cctv_restore_cache_requests_total", result="hit") == 1
    assert change("cctv_restore_jobs_finished_total", state="done") == 1
    assert change("cctv_restore_frames_total", state="done") == 1
    assert change("cctv_restore_job_duration_seconds_count") == 1
    assert change("cctv_restore_queue_wait_seconds_count") == 1
    assert change("cctv_restore_queue_wait_seconds_bucket", le="+Inf") == 1
    assert after[("cctv_restore_jobs", (("state", "done"),))] == 1
    assert after[("cctv_restore_job_frames", (("state", "done"),))] == 1
    assert after[("cctv_restore_jobs", (("state", "queued"),))] == 0


def test_the_model_served_is_named_with_its_weights_hash(archive: Archive) -> None:
    restorer = archive.runtime.restorer
    info = {
        dict(labels)["name"]: dict(labels)
        for (name, labels), value in scrape(archive).items()
        if name == "cctv_model_info" and value == 1
    }
    assert info["tiny-test"]["weights_sha256"] == restorer.weights_sha256
    assert info["tiny-test"]["degradation"] == restorer.degradation_id


def test_metrics_need_a_read_key_in_a_header_or_as_a_bearer_token(archive: Archive) -> None:
    assert archive.client.get("/metrics").status_code == 401
    assert archive.get("/metrics", key="camera").status_code == 403
    bearer = {"Authorization": f"Bearer {archive.keys['investigator']}"}
    response = archive.client.get("/metrics", headers=bearer)
    assert response.status_code == 200
    assert ("cctv_archive_frames", ()) in parse(response.text)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_worker_pool_process_serves_its_own_metrics() -> None:
    base = _free_port()
    assert serve_worker_metrics(base, 0) == base
    text = urllib.request.urlopen(f"http://127.0.0.1:{base}/metrics", timeout=5).read().decode()
    samples = parse(text)
    assert ("cctv_restore_job_duration_seconds_count", ()) in samples
    assert ("cctv_frames_ingested_total", ()) in samples
    # The port is taken now: a second process logs it and carries on without metrics.
    assert serve_worker_metrics(base, 0) is None
    assert serve_worker_metrics(0, 3) is None  # turned off


def test_the_worker_port_is_its_base_plus_the_pool_index() -> None:
    base = _free_port()
    served = serve_worker_metrics(base - 2, 2)
    assert served == base
    wait_for(lambda: b"cctv_" in urllib.request.urlopen(f"http://127.0.0.1:{base}/metrics").read())
