"""Structured logs: JSON lines, and the request id that follows a restore from the request to
the thread that runs its job."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from app.observability.logs import JsonFormatter, request_context, use_format
from tests.app.conftest import Archive, wait_for_job
from tests.app.images import image_bytes


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What the root logger writes, in JSON lines (as CCTV_LOG_FORMAT=json makes it)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    use_format(handler, "json")
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield out
    root.removeHandler(handler)
    root.setLevel(level)


def lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_record_is_one_json_object_with_its_request_and_extra_fields() -> None:
    record = logging.makeLogRecord(
        {"name": "app.x", "levelno": 30, "levelname": "WARNING", "msg": "frame %s", "args": ("f1",)}
    )
    record.job_id = "j1"
    with request_context("req-1"):
        line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "frame f1" and parsed["level"] == "warning"
    assert parsed["logger"] == "app.x" and parsed["request_id"] == "req-1"
    assert parsed["job_id"] == "j1"
    assert parsed["ts"].endswith("+00:00")


def test_a_traceback_stays_inside_the_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("t").makeRecord(
            "t", logging.ERROR, __file__, 1, "failed", (), exc_info=__import__("sys").exc_info()
        )
    parsed = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in parsed["exc"]


def test_the_request_id_is_answered_and_a_bad_one_replaced(archive: Archive) -> None:
    given = archive.client.get("/healthz", headers={"X-Request-ID": "trace-42"})
    assert given.headers["X-Request-ID"] == "trace-42"
    for bad in ["has space", "x" * 65, "a\tb"]:
        made = archive.client.get("/healthz", headers={"X-Request-ID": bad}).headers
        assert made["X-Request-ID"] != bad and len(made["X-Request-ID"]) == 32
    assert len(archive.client.get("/healthz").headers["X-Request-ID"]) == 32


def test_the_request_id_follows_a_restore_job_to_the_thread_that_runs_it(
    archive: Archive, json_lines: io.StringIO
) -> None:
    frame_id = archive.frame_id(image_bytes(seed=21))
    response = archive.client.post(
        "/v1/restore-jobs",
        json={"frame_ids": [frame_id]},
        headers=archive.as_key("investigator") | {"X-Request-ID": "trace-restore-1"},
    )
    job_id = response.json()["id"]
    assert wait_for_job(archive, job_id)["state"] == "done"
    logged = lines(json_lines)
    finished = [line for line in logged if line.get("job_id") == job_id]
    assert finished and finished[0]["request_id"] == "trace-restore-1"
    assert finished[0]["logger"] == "app.restorations.task"
    access = [line for line in logged if line["logger"] == "cctv.access"]
    post = [line for line in access if line["path"] == "/v1/restore-jobs"]
    assert post[0]["request_id"] == "trace-restore-1" and post[0]["status"] == 202
    # Other requests' lines carry their own ids, never this one.
    assert all(
        line["request_id"] != "trace-restore-1" for line in access if line["method"] == "GET"
    )


def test_the_access_line_never_carries_the_query_string(
    archive: Archive, json_lines: io.StringIO
) -> None:
    archive.client.get("/login?next=/frames&secret=hunter2")
    access = [line for line in lines(json_lines) if line["logger"] == "cctv.access"]
    assert access[0]["path"] == "/login" and access[0]["message"] == "GET /login 200"
    assert "hunter2" not in json.dumps(access)


def test_configure_logging_writes_json_lines_to_stderr_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.observability.logs import configure_logging

    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", logging.WARNING)
    configure_logging("json")
    configure_logging("json")  # configured already: no second handler
    assert len(root.handlers) == 1
    with request_context("req-9"):
        logging.getLogger("app.test").info("hello %s", "there")
    line = json.loads(capsys.readouterr().err.strip())
    assert line["message"] == "hello there" and line["request_id"] == "req-9"
