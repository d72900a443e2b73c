"""A real `cctv-archive serve` for benchmarks: its own archive in a folder, a free loopback port,
an API key, stopped on exit."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def children(pid: int) -> list[int]:
    """The processes `pid` started that still run (Linux /proc): a `serve --workers N`'s workers."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


@dataclass(frozen=True)
class Server:
    base_url: str
    key: str
    pid: int


@contextmanager
def serve(
    workdir: Path,
    env: dict[str, str],
    *,
    scopes: str = "ingest,read",
    key_name: str = "bench",
    launcher: Sequence[str] = ("-m", "app"),
) -> Iterator[Server]:
    """Start the server on `env` (CCTV_ settings) with its archive in `workdir`; yield it once it
    listens, with a new key `key_name` of `scopes`. `launcher`: what runs the CLI's `serve`
    (a benchmark's own script may, to change something in the server's process)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    environ = os.environ | {
        "CCTV_ENVIRONMENT": "test",
        "CCTV_DATA_DIR": str(workdir / "data"),
        "CCTV_MODEL_DEVICE": "cpu",
        **env,
    }
    command = [sys.executable, *launcher, "serve", "--port", str(port), "--log-level", "warning"]
    log_path = workdir / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command, cwd=ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 120
            workers = int(environ.get("CCTV_WEB_WORKERS", "1"))  # each says it listens
            while log_path.read_bytes().count(b"listening on") < workers:
                if server.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace")[-400:]
                    raise RuntimeError(f"server did not start: {tail}")
                time.sleep(0.2)
            create = ["keys", "create", "--name", key_name, "--scopes", scopes]
            key = subprocess.run(
                [sys.executable, "-m", "app", *create],
                cwd=ROOT,
                env=environ,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            yield Server(f"http://127.0.0.1:{port}", key, server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
