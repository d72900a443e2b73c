"""`cctv-archive`: local commands on the configured database, client commands over real HTTP."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from app import cli, migrate
from app.auth.schemas import Scope
from app.auth.service import create_key
from app.cli import serve as serve_cli
from app.config import Settings, get_settings
from app.db import make_session_factory, unit_of_work
from app.main import create_app
from models import EDSR, EDSRConfig, save_model
from tests.app.images import decode, image_bytes
from tests.services import free_port


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """CCTV_ variables pointing at a fresh data folder (the way an operator configures it)."""
    monkeypatch.setenv("CCTV_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CCTV_PROFILE", "400:2:png")
    monkeypatch.delenv("CCTV_DATABASE_URL", raising=False)
    monkeypatch.delenv("CCTV_STORAGE_URL", raising=False)
    monkeypatch.delenv("CCTV_API_KEY", raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_keys_create_list_revoke(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["migrate"]) == 0
    capsys.readouterr()
    assert cli.main(["keys", "create", "--name", "nvr-1", "--scopes", "ingest"]) == 0
    created = capsys.readouterr()
    key = created.out.strip()
    assert key.startswith("cctv_") and "shown only this once" in created.err

    assert cli.main(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert "nvr-1" in listing and "ingest" in listing and key not in listing

    assert cli.main(["keys", "revoke", "nvr-1"]) == 0
    assert "revoked API key 'nvr-1'" in capsys.readouterr().out
    cli.main(["keys", "list"])
    row = capsys.readouterr().out.splitlines()[1]
    assert row.startswith("nvr-1") and not row.endswith("-")  # the revoked column is filled
    assert cli.main(["keys", "revoke", "nobody"]) == 1
    assert "no API key named 'nobody'" in capsys.readouterr().err


def test_keys_create_refuses_unknown_scopes(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["keys", "create", "--name", "x", "--scopes", "read,write"]) == 1
    assert "unknown scope 'write'" in capsys.readouterr().err


def test_without_arguments_the_command_list_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    admin = ["serve", "migrate", "keys", "verify", "measure"]
    client = ["ingest", "restore", "stats"]
    listed = {line.split()[0] for line in out.splitlines() if line.startswith("    ")}
    for command in [*admin, *client, *cli.MODEL_COMMANDS, "worker"]:
        assert command in listed, command


def test_worker_command_becomes_the_worker_program(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(os, "execv", lambda path, argv: calls.append((path, argv)))
    cli.main(["worker", "-n", "gpu0@%h"])
    assert calls == [(sys.executable, [sys.executable, "-m", "worker", "-n", "gpu0@%h"])]


@pytest.mark.parametrize("argv", [["keys", "list"], ["verify"]])
def test_read_only_commands_refuse_an_unmigrated_database_and_leave_it(
    env: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    migrate.upgrade(get_settings().database_url, "0001")  # an old schema

    assert cli.main(argv) == 1

    assert "run `cctv-archive migrate` first" in capsys.readouterr().err
    assert not migrate.is_current(get_settings().database_url)  # not migrated behind our back


def test_migrate_creates_the_database_in_the_data_folder(env: Path) -> None:
    assert cli.main(["migrate"]) == 0
    assert (env / "data" / "archive.db").is_file()
    assert migrate.is_current(get_settings().database_url)


@pytest.fixture
def model_file(env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """CCTV_MODEL pointing at a tiny model saved the way shipped models are."""
    model = env / "tiny.safetensors"
    save_model(
        model,
        EDSR(EDSRConfig(n_resblocks=1, n_feats=8)),
        name="tiny-file",
        degradation_id="bicubic-aa-x2/webp-lossless/v1",
    )
    monkeypatch.setenv("CCTV_MODEL", str(model))
    get_settings.cache_clear()
    return model


def test_serve_migrates_loads_the_model_and_says_where_it_listens(
    model_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: dict[str, Any] = {}

    def run(server: uvicorn.Server, sockets: list[socket.socket]) -> None:
        calls.update(app=server.config.app, address=sockets[0].getsockname())

    monkeypatch.setattr(uvicorn.Server, "run", run)
    port = free_port()

    assert cli.main(["serve", "--host", "127.0.0.1", "--port", str(port)]) == 0

    out = capsys.readouterr().out
    assert "tiny-file" in out
    assert "listening" not in out  # the server never started, so it never said so
    assert calls["address"] == ("127.0.0.1", port)
    assert migrate.is_current(get_settings().database_url)


def test_serve_without_the_model_says_so_in_one_line(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CCTV_MODEL", str(env / "missing.safetensors"))
    get_settings.cache_clear()
    assert cli.main(["serve"]) == 1
    assert "cannot load the model" in capsys.readouterr().err


def _children(pid: int) -> set[int]:
    """The processes `pid` started and that still run (Linux /proc)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(child) for child in (task / "children").read_text().split()}
    return found


def _until(condition: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.1)
    return result


def _ingested(url: str, key: str) -> float:
    text = httpx.get(f"{url}/metrics", headers={"X-API-Key": key}).text
    line = next(line for line in text.splitlines() if line.startswith("cctv_frames_ingested_"))
    return float(line.split()[-1])


def _drive_workers(url: str) -> dict[str, Any]:
    """What an operator's clients see of `serve --workers 2`, and one worker killed."""
    seen: dict[str, Any] = {}
    supervisor = os.getpid()
    workers = _until(lambda: len(_children(supervisor)) == 2 and _children(supervisor))

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/readyz").status_code == 200
        except httpx.TransportError:
            return False

    _until(ready)
    with unit_of_work(make_session_factory(get_settings())) as session:
        key = create_key("workers", frozenset({Scope.ingest, Scope.read}), session=session)[1]
    headers = {"X-API-Key": key}

    def upload(i: int) -> str:  # a connection each: the kernel hands them to either worker
        files = {"file": ("f.png", image_bytes("PNG", width=64, height=48, seed=i))}
        form = {"camera_id": "yard", "captured_at": f"2024-05-01T12:0{i}:00Z"}
        response = httpx.post(f"{url}/v1/frames", headers=headers, files=files, data=form)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    with ThreadPoolExecutor(4) as pool:  # both workers append to the audit chain at once
        ids = list(pool.map(upload, range(8)))
    seen["ingested"] = {_ingested(url, key) for _ in range(6)}  # whichever worker answers
    restored = httpx.get(
        f"{url}/v1/frames/{ids[0]}/restored", params={"wait": 30}, headers=headers, timeout=60
    )
    seen["restored"] = (restored.status_code, restored.headers.get("x-ai-generated"))

    for n, worker in enumerate(sorted(workers), start=1):  # both die: replacements serve
        os.kill(worker, signal.SIGKILL)
        _until(lambda n=n: len(_children(supervisor) - workers) == n)
    _until(ready)
    upload = {"file": ("f.png", image_bytes("PNG", width=64, height=48, seed=99))}
    form = {"camera_id": "yard", "captured_at": "2024-05-01T13:00:00Z"}
    seen["after"] = httpx.post(f"{url}/v1/frames", headers=headers, files=upload, data=form)
    return seen


def test_serve_with_workers_shares_one_archive_and_replaces_a_worker_that_dies(
    model_file: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CCTV_DATABASE_URL", database_url)  # SQLite, then PostgreSQL
    get_settings.cache_clear()
    monkeypatch.setattr(serve_cli, "MIN_WORKER_LIFE_S", 0.0)  # any exit is a death, not a start
    port = free_port()
    seen: dict[str, Any] = {}

    def drive() -> None:
        try:
            seen.update(_drive_workers(f"http://127.0.0.1:{port}"))
        except BaseException as exc:
            seen["error"] = exc
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # the operator stops the server

    threading.Thread(target=drive, daemon=True).start()
    assert cli.main(["serve", "--port", str(port), "--workers", "2"]) == 0

    if "error" in seen:
        raise seen["error"]
    assert seen["ingested"] == {8.0}  # every answer counts both workers' uploads
    assert seen["restored"] == (200, "true")
    assert seen["after"].status_code == 201
    out, err = capfd.readouterr()
    assert out.count(f"listening on http://127.0.0.1:{port} (worker") >= 3  # 2, a new one
    assert "worker 1 of 2" in out and "worker 2 of 2" in out
    assert err.count("exited with code -9; its jobs freed, a new one starts") == 2
    assert not _children(os.getpid())  # all stopped
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    assert cli.main(["audit", "verify"]) == 0  # one chain, whichever process appended
    assert "chain intact" in capfd.readouterr().out


def test_serve_stops_when_its_workers_cannot_start(
    env: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CCTV_MODEL", str(env / "missing.safetensors"))
    get_settings.cache_clear()

    assert cli.main(["serve", "--port", str(free_port()), "--workers", "2"]) == 1

    err = capfd.readouterr().err
    assert "cannot load the model" in err  # the worker's own message
    assert "s after its start (code 1); stopping" in err
    assert not _children(os.getpid())


def test_serve_refuses_a_worker_count_out_of_range(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["serve", "--workers", "0"]) == 1
    assert "--workers 0: give 1 to 64 server processes" in capsys.readouterr().err


def test_measure_reports_quality_on_the_audit_sample(
    model_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.frames.service import Upload, ingest_frame
    from app.storage import build_store
    from models import Profile

    monkeypatch.setenv("CCTV_AUDIT_SAMPLE_RATE", "1")
    get_settings.cache_clear()
    settings = get_settings()
    migrate.upgrade(settings.database_url)
    store = build_store(settings)
    for seed, camera in enumerate(["gate", "gate", "yard"]):
        with unit_of_work(make_session_factory(settings)) as session:
            upload = Upload(
                image_bytes(width=64, height=48, seed=seed), camera, datetime.now(UTC), []
            )
            ingest_frame(
                upload,
                session=session,
                store=store,
                profile=Profile.parse(settings.profile),
                settings=settings,
            )
    assert cli.main(["measure"]) == 0

    out = capsys.readouterr().out
    assert "measured 3 audit-sample frames with tiny-file" in out
    lines = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
    assert lines["gate"][1] == "2" and lines["yard"][1] == "1" and lines["all"][2] == "3"


@pytest.mark.parametrize("command", ["train", "evaluate", "sweep"])
def test_model_commands_are_forwarded_to_models_cli(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import models.cli

    seen: list[list[str]] = []
    monkeypatch.setattr(models.cli, "main", lambda argv: seen.append(argv) or 7)
    assert cli.main([command, "--steps", "10"]) == 7
    assert seen == [[command, "--steps", "10"]]


# -- client commands against a real server ----------------------------------------------------


@pytest.fixture
def server(settings: Settings, tiny_restorer: Any) -> Iterator[tuple[str, str]]:
    """The app on a real socket (uvicorn in a thread); yields its URL and an operator key."""
    with unit_of_work(make_session_factory(settings)) as session:
        key = create_key("cli", frozenset({Scope.ingest, Scope.read}), session=session)[1]
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, restorer=tiny_restorer), port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", key
    server.should_exit = True
    thread.join(10)


def test_ingest_restore_and_stats_over_http(
    server: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, key = server
    folder = tmp_path / "export"
    (folder / "night").mkdir(parents=True)
    for i, fmt in enumerate(["JPEG", "PNG", "BMP"]):
        (folder / "night" / f"f{i}.{fmt.lower()}").write_bytes(
            image_bytes(fmt, width=640, height=480, seed=i)
        )
    (folder / "notes.txt").write_text("not an image: skipped by suffix")
    client = ["--server", url, "--api-key", key]

    ingest = ["ingest", str(folder), "--camera", "yard", "--captured-at", "2024-05-01T12:00:00Z"]
    assert cli.main([*ingest, *client]) == 0
    out = capsys.readouterr().out
    assert "3 frames archived, 0 already in the archive, 0 failed" in out
    assert "saved" in out

    assert cli.main([*ingest, *client]) == 0
    assert "0 frames archived, 3 already in the archive" in capsys.readouterr().out

    import httpx

    frames = httpx.get(f"{url}/v1/frames", headers={"X-API-Key": key}).json()["items"]
    output = tmp_path / "restored.webp"
    assert cli.main(["restore", frames[0]["id"], "-o", str(output), *client]) == 0
    restored = decode(output.read_bytes())
    assert restored.format == "WEBP" and restored.size == (400, 400)
    assert "not an original recording" in capsys.readouterr().out

    assert cli.main(["stats", *client]) == 0
    table = capsys.readouterr().out
    assert "yard" in table and "all cameras" in table


def test_export_create_downloads_a_bundle_that_verifies(
    server: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, key = server
    client = ["--server", url, "--api-key", key]
    for i in range(2):
        (tmp_path / f"f{i}.png").write_bytes(image_bytes("PNG", width=64, height=48, seed=i))
    ingest = ["ingest", str(tmp_path), "--camera", "gate", "--captured-at", "2024-05-01T12:00:00Z"]
    assert cli.main([*ingest, *client]) == 0
    capsys.readouterr()

    bundle = tmp_path / "evidence.zip"
    create = ["export", "create", "--camera", "gate", "--from", "2024-05-01T00:00:00Z"]
    create += ["--to", "2024-05-02T00:00:00Z", "--include", "stored", "restored", "-o", str(bundle)]
    assert cli.main([*create, *client]) == 0
    out = capsys.readouterr().out
    # 2 stored + 2 restored frames and the trail; the anchor of the restorations' credentials
    assert "OK: 6 files match the manifest; signature valid" in out
    key_file = tmp_path / "evidence.zip.key.pem"
    assert key_file.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    # The offline check agrees, with the key the command saved beside the bundle.
    assert cli.main(["export", "verify", str(bundle), "--public-key", str(key_file)]) == 0
    with zipfile.ZipFile(bundle) as archive:
        roles = {entry["role"] for entry in json.loads(archive.read("manifest.json"))["files"]}
    assert {"stored", "ai-generated-derivative"} <= roles


def test_export_create_says_what_was_wrong(
    server: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, key = server
    out = ["-o", str(tmp_path / "x.zip"), "--server", url, "--api-key", key]
    assert cli.main(["export", "create", "--frames", "f1", "--camera", "gate", *out]) == 1
    assert "not both" in capsys.readouterr().err
    assert cli.main(["export", "create", "--frames", "no-such-frame", *out]) == 1
    err = capsys.readouterr().err
    assert "no-such-frame" in err and len(err) < 400
    assert not (tmp_path / "x.zip").exists()


def test_ingest_reports_refused_files_and_fails(
    server: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, key = server
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(image_bytes("JPEG")[:200])
    assert (
        cli.main(
            [
                "ingest",
                str(bad),
                "--camera",
                "yard",
                "--server",
                url,
                "--api-key",
                key,
                "--captured-at",
                "2024-05-01T12:00:00Z",
            ]
        )
        == 1
    )
    captured = capsys.readouterr()
    assert "corrupt_image" in captured.out + captured.err
    assert "1 failed" in captured.out


def test_client_commands_need_a_key_and_a_reachable_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CCTV_API_KEY", raising=False)
    assert cli.main(["stats", "--server", "http://127.0.0.1:9"]) == 1
    assert "no API key" in capsys.readouterr().err
    assert cli.main(["stats", "--server", f"http://127.0.0.1:{free_port()}", "--api-key", "k"]) == 1
    assert "cannot reach" in capsys.readouterr().err


def test_serve_without_a_model_for_the_profile_names_the_profile_in_one_line(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CCTV_MODEL", raising=False)
    monkeypatch.setenv("CCTV_PROFILE", "400:2:jpeg-q37")
    get_settings.cache_clear()
    assert cli.main(["serve"]) == 1
    err = capsys.readouterr().err.strip()
    assert "no shipped model was trained for profile 400:2:jpeg-q37" in err
    assert len(err.splitlines()) == 1


def test_without_cctv_model_the_shipped_model_for_the_profile_is_loaded(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.restorations.model import load_restorer
    from models.registry import model_for_profile

    monkeypatch.delenv("CCTV_MODEL", raising=False)
    get_settings.cache_clear()
    restorer = load_restorer(get_settings())
    assert restorer.weights_sha256 == load_model_sha(model_for_profile("400:2:webp-lossless").path)


def load_model_sha(path: Path) -> str:
    from models.checkpoint import file_sha256

    return file_sha256(path)


def test_keys_create_with_a_taken_name_fails_with_nothing_on_stdout(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["migrate"]) == 0
    assert cli.main(["keys", "create", "--name", "gate", "--scopes", "read"]) == 0
    capsys.readouterr()

    assert cli.main(["keys", "create", "--name", "gate", "--scopes", "read"]) == 1

    out, err = capsys.readouterr()
    assert out == ""  # `KEY=$(cctv-archive keys create ...)` captures nothing
    assert "a key named 'gate' already exists" in err


def test_a_revoked_name_can_be_given_to_a_new_key(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["migrate"]) == 0
    assert cli.main(["keys", "create", "--name", "gate", "--scopes", "read"]) == 0
    old = capsys.readouterr().out.strip()
    assert cli.main(["keys", "revoke", "gate"]) == 0

    assert cli.main(["keys", "create", "--name", "gate", "--scopes", "ingest"]) == 0
    new = capsys.readouterr().out.strip().splitlines()[-1]

    assert new.startswith("cctv_") and new != old
    with unit_of_work(make_session_factory(get_settings())) as session:
        from app.auth.service import authenticate
        from app.errors import Unauthenticated

        assert authenticate(new, session=session).scopes == frozenset({Scope.ingest})
        with pytest.raises(Unauthenticated):
            authenticate(old, session=session)  # the revoked key stays revoked


@pytest.mark.parametrize(
    "argv",
    [
        ["keys", "create", "--name", "x", "--scopes", "read"],
        ["keys", "revoke", "x"],
        ["keys", "list"],
        ["verify"],
        ["audit", "verify"],
    ],
)
def test_admin_commands_name_their_database_and_never_create_one(
    env: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    database = env / "data" / "archive.db"

    assert cli.main(argv) == 1

    out, err = capsys.readouterr()
    assert out == ""
    assert str(database) in err and "cctv-archive migrate" in err
    assert not database.exists()


def test_admin_commands_say_which_database_they_use(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["migrate"]) == 0
    capsys.readouterr()
    assert cli.main(["keys", "create", "--name", "x", "--scopes", "read"]) == 0
    out, err = capsys.readouterr()
    assert f"database: sqlite:///{env / 'data' / 'archive.db'}" in err
    assert out.strip().startswith("cctv_")  # stdout keeps only the key


@pytest.mark.parametrize(
    ("variable", "value"),
    [("CCTV_PROFILE", "400:two:webp"), ("CCTV_MAX_PIXELS", "lots")],
)
def test_serve_with_a_bad_variable_fails_first_in_one_line_naming_it(
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
) -> None:
    monkeypatch.setenv(variable, value)
    get_settings.cache_clear()

    assert cli.main(["serve", "--port", str(free_port())]) == 1

    out, err = capsys.readouterr()
    assert len(err.strip().splitlines()) == 1 and variable in err and "Traceback" not in err
    assert "listening" not in out
    assert not (env / "data").exists()  # nothing made before the check


def test_serve_on_a_busy_port_fails_first_in_one_line(
    model_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert cli.main(["serve", "--port", str(port)]) == 1

    out, err = capsys.readouterr()
    assert len(err.strip().splitlines()) == 1
    assert f"127.0.0.1:{port}" in err and "--port" in err
    assert "listening" not in out
    assert not (model_file.parent / "data").exists()  # failed before migrating


def test_serve_says_where_it_listens_once_it_answers(
    model_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    servers: list[uvicorn.Server] = []
    original_init = uvicorn.Server.__init__

    def keep(self: uvicorn.Server, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        servers.append(self)

    monkeypatch.setattr(uvicorn.Server, "__init__", keep)
    port = free_port()
    answered: list[int] = []

    def announced() -> None:
        # The moment the address is printed, the server must answer on it.
        output = ""
        deadline = time.monotonic() + 60
        while "listening on" not in output and time.monotonic() < deadline:
            output += capsys.readouterr().out
            time.sleep(0.01)
        answered.append(httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code)
        servers[0].should_exit = True

    watcher = threading.Thread(target=announced)
    watcher.start()
    assert cli.main(["serve", "--port", str(port)]) == 0
    watcher.join()
    assert answered == [200]


def _jpeg_with_exif_time(taken: str, offset: str | None) -> bytes:
    from PIL import ExifTags, Image

    image = Image.open(io.BytesIO(image_bytes("JPEG", seed=7)))
    exif = Image.Exif()
    ifd = exif.get_ifd(ExifTags.IFD.Exif)
    ifd[ExifTags.Base.DateTimeOriginal] = taken
    if offset is not None:
        ifd[ExifTags.Base.OffsetTimeOriginal] = offset
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95, exif=exif)
    return out.getvalue()


def test_ingest_takes_the_capture_time_from_exif_else_requires_captured_at(
    server: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, key = server
    client = ["--server", url, "--api-key", key, "--camera", "porch"]
    exif = tmp_path / "exif.jpg"
    exif.write_bytes(_jpeg_with_exif_time("2024:03:02 10:11:12", "+02:00"))
    plain = tmp_path / "plain.png"
    plain.write_bytes(image_bytes("PNG", seed=8))  # copied just now: its mtime says nothing

    # Without --captured-at the file with no EXIF time is refused, and said why.
    assert cli.main(["ingest", str(exif), str(plain), *client]) == 1
    out, err = capsys.readouterr()
    assert "plain.png" in out + err and "--captured-at" in out + err
    assert "exif.jpg: captured 2024-03-02T08:11:12+00:00 (EXIF DateTimeOriginal)" in out + err
    assert "1 frames archived" in out and "1 failed" in out

    assert cli.main(["ingest", str(plain), *client, "--captured-at", "2024-05-01T06:00:00Z"]) == 0
    out, err = capsys.readouterr()
    assert "plain.png: captured 2024-05-01T06:00:00+00:00 (--captured-at)" in out + err

    frames = httpx.get(f"{url}/v1/frames?camera_id=porch", headers={"X-API-Key": key}).json()
    assert sorted(f["captured_at"] for f in frames["items"]) == [
        "2024-03-02T08:11:12Z",
        "2024-05-01T06:00:00Z",
    ]


def test_ingest_refuses_an_exif_time_without_an_offset_unless_given_one(
    server: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, key = server
    client = ["--server", url, "--api-key", key, "--camera", "lobby"]
    exif = tmp_path / "local.jpg"
    exif.write_bytes(_jpeg_with_exif_time("2024:03:02 10:11:12", None))

    assert cli.main(["ingest", str(exif), *client]) == 1
    out, err = capsys.readouterr()
    assert "--exif-offset" in out + err

    assert cli.main(["ingest", str(exif), *client, "--exif-offset=-05:00"]) == 0
    out, err = capsys.readouterr()
    assert "captured 2024-03-02T15:11:12+00:00 (EXIF DateTimeOriginal, --exif-offset)" in out + err
