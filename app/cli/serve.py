"""`cctv-archive serve`: migrate, load the model and run the API.

One process by default. With `--workers N` (CCTV_WEB_WORKERS) this process binds the socket,
migrates and prepares the archive, then starts N worker processes that share the socket and the
archive, each with its own GIL, model, restore pool and decode slots: what lets ingest use more
cores than one process's Python can keep busy. Restore jobs and exports are claimed by the
process that runs them (app/leases.py); metrics are summed over the processes
(prometheus_client's multiprocess mode, app/observability/metrics.py). The supervisor stops
them on SIGTERM or Ctrl-C, and replaces one that dies, freeing its jobs for the others at once.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import TYPE_CHECKING, Any

from app import __version__
from app.cli.admin import load_model, redact
from app.cli.common import CommandError

if TYPE_CHECKING:
    import uvicorn

    from app.config import Settings

# A worker that exits sooner than this after its start is taken to be unable to start (a model
# that does not load, a broken configuration): the server stops instead of restarting it forever.
MIN_WORKER_LIFE_S = 30.0
STOP_GRACE_S = 30.0  # how long workers get to finish their requests on stop


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, made before anything else so a busy port fails first."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise CommandError(
            f"cannot listen on {host}:{port} (--host, --port): {exc.strerror or exc}"
        ) from exc
    return sock


def _server(app: Any, log_level: str, announce: str) -> uvicorn.Server:
    """uvicorn on `app`, printing `announce` once the app has started and the socket serves."""
    import uvicorn

    class AnnouncingServer(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:  # the app started and the socket accepts requests
                print(announce, flush=True)

    # uvicorn's loggers go through the root handler (app.observability.logs); the access line is
    # the app's own (cctv.access: with the request id, without the query string).
    config = uvicorn.Config(app, log_level=log_level, log_config=None, access_log=False)
    return AnnouncingServer(config)


def _prepare(settings: Settings) -> None:
    """What the processes of a server must not race to do: create the signing keys, and free the
    restore jobs and exports a previous run left unfinished (no process holds one yet), so they
    are resumed at once. Only in the embedded default: scaled out, other replicas may hold them."""
    from app.db import make_engine, make_session_factory
    from app.leases import free_all
    from app.lifecycle.credentials import ContentCredentials
    from app.lifecycle.signing import Signer

    assert settings.signing_key_path is not None  # the settings fill it in
    Signer.load_or_create(settings.signing_key_path)
    ContentCredentials.load_or_create(settings.signing_key_path.parent / "c2pa-credentials.pem")
    if settings.restore_backend != "inprocess":
        return
    engine = make_engine(settings.database_url)
    try:
        freed = free_all(make_session_factory(engine=engine))
    finally:
        engine.dispose()
    if freed:
        print(f"jobs:     {freed} restore jobs and exports left unfinished, resumed now")


def cmd_serve(args: argparse.Namespace) -> int:
    from app import migrate
    from app.config import get_settings
    from app.observability.logs import configure_logging
    from models import Profile

    settings = get_settings()
    try:
        Profile.parse(settings.profile)
    except ValueError as exc:
        raise CommandError(f"CCTV_PROFILE={settings.profile!r} is not valid: {exc}") from exc
    workers = args.workers if args.workers is not None else settings.web_workers
    if not 1 <= workers <= 64:
        raise CommandError(f"--workers {workers}: give 1 to 64 server processes")
    if args.socket_fd is not None:  # one of the processes a supervisor started
        return _serve_worker(args, settings)
    sock = _bind(args.host, args.port)
    address = f"http://{args.host}:{args.port}"
    with sock:
        # CCTV_LOG_FORMAT: text, or one JSON object per line; both carry the request id.
        configure_logging(settings.log_format)
        migrate.upgrade(settings.database_url)
        print(f"database: {redact(settings.database_url)} (migrated)")
        print(f"blobs:    {settings.storage_url}")
        _prepare(settings)
        if workers > 1:
            return Supervisor(sock, args, workers, settings.database_url).run()
        from app.main import create_app

        restorer = load_model(settings)
        print(
            f"model:    {restorer.name} (weights {restorer.weights_sha256[:16]}) "
            f"on {restorer.device}"
        )
        app = create_app(settings, restorer=restorer)
        announce = f"cctv-archive {__version__} listening on {address}"
        _server(app, args.log_level, announce).run(sockets=[sock])
    return 0


def _serve_worker(args: argparse.Namespace, settings: Settings) -> int:
    """A worker process: the supervisor's socket, the archive it prepared, the app."""
    from app.main import create_app
    from app.observability.logs import configure_logging

    _exit_with(os.getppid())
    sock = socket.socket(fileno=args.socket_fd)
    configure_logging(settings.log_format)
    restorer = load_model(settings)
    label = f"worker {args.worker_index} of {args.workers}, pid {os.getpid()}"
    print(
        f"model:    {restorer.name} (weights {restorer.weights_sha256[:16]}) "
        f"on {restorer.device} ({label})",
        flush=True,
    )
    app = create_app(settings, restorer=restorer)
    address = f"http://{args.host}:{args.port}"
    announce = f"cctv-archive {__version__} listening on {address} ({label})"
    _server(app, args.log_level, announce).run(sockets=[sock])
    return 0


def _exit_with(parent: int) -> None:
    """Stop this worker (as SIGTERM does: requests finish) if its supervisor goes away, killed
    without a chance to stop it, rather than serve on unsupervised."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()


class Supervisor:
    """Starts the worker processes on one listening socket, replaces one that dies, and stops
    them all on SIGTERM or SIGINT."""

    def __init__(
        self, sock: socket.socket, args: argparse.Namespace, workers: int, database_url: str
    ) -> None:
        self.sock = sock
        self.args = args
        self.workers = workers
        self.database_url = database_url  # to free a dead worker's jobs
        self.stopping = threading.Event()
        self.processes: list[tuple[subprocess.Popen[bytes], float]] = []

    def _start(self, index: int) -> tuple[subprocess.Popen[bytes], float]:
        fd = self.sock.fileno()
        command = [sys.executable, "-m", "app", "serve", "--socket-fd", str(fd)]
        command += ["--worker-index", str(index), "--workers", str(self.workers)]
        command += ["--host", self.args.host, "--port", str(self.args.port)]
        command += ["--log-level", self.args.log_level]
        # Its own session: Ctrl-C reaches the supervisor only, which stops the workers once.
        process = subprocess.Popen(command, pass_fds=(fd,), start_new_session=True)
        return process, time.monotonic()

    def run(self) -> int:
        from app.observability.metrics import MULTIPROC_DIR

        metrics_dir = tempfile.mkdtemp(prefix="cctv-archive-metrics-")
        os.environ[MULTIPROC_DIR] = metrics_dir  # the workers inherit it
        handlers = {
            sig: signal.signal(sig, lambda *_: self.stopping.set())
            for sig in (signal.SIGTERM, signal.SIGINT)
        }
        print(f"workers:  {self.workers} processes (supervisor pid {os.getpid()})", flush=True)
        try:
            self.processes = [self._start(i + 1) for i in range(self.workers)]
            return self._watch()
        finally:
            self._stop_all()
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            os.environ.pop(MULTIPROC_DIR, None)
            shutil.rmtree(metrics_dir, ignore_errors=True)

    def _watch(self) -> int:
        while not self.stopping.wait(0.5):
            for index, (process, started) in enumerate(self.processes):
                code = process.poll()
                if code is None or self.stopping.is_set():
                    continue
                lived = time.monotonic() - started
                if lived < MIN_WORKER_LIFE_S:
                    print(
                        f"cctv-archive: worker {index + 1} exited {lived:.0f} s after its start "
                        f"(code {code}); stopping (its messages are above)",
                        file=sys.stderr,
                        flush=True,
                    )
                    return 1
                print(
                    f"worker {index + 1} (pid {process.pid}) exited with code {code}; "
                    "its jobs freed, a new one starts",
                    file=sys.stderr,
                    flush=True,
                )
                self._free_jobs_of(process.pid)
                self.processes[index] = self._start(index + 1)
        return 0

    def _free_jobs_of(self, pid: int) -> None:
        """Let the other workers take a dead worker's restore jobs and exports now, rather than
        once its claims go stale."""
        from app.db import make_engine, make_session_factory
        from app.leases import free_all

        engine = make_engine(self.database_url)
        try:
            free_all(make_session_factory(engine=engine), pid=pid)
        except Exception as exc:  # they go stale instead, and are taken over then
            print(f"could not free the jobs of pid {pid}: {exc}", file=sys.stderr)
        finally:
            engine.dispose()

    def _stop_all(self) -> None:
        for process, _ in self.processes:
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for process, _ in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def add_serve(sub: Any) -> None:
    serve = sub.add_parser("serve", help="migrate, load the model and run the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--log-level", default="info")
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="server processes on one archive (default: CCTV_WEB_WORKERS, 1)",
    )
    # Given by the supervisor to the worker processes it starts, not by a user.
    serve.add_argument("--socket-fd", type=int, default=None, help=argparse.SUPPRESS)
    serve.add_argument("--worker-index", type=int, default=1, help=argparse.SUPPRESS)
    serve.set_defaults(handler=cmd_serve)
