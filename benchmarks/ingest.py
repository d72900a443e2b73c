"""Ingest speed: frames/s over HTTP with the embedded default, against the floor of the same image
work done in-process, per profile; and where the time of one frame goes (encode time per codec).

    python benchmarks/ingest.py [--profiles 400:2:webp-lossless 400:2:avif-q50 ...]
        [--frames 48] [--clients 1 4 16] [--repeat 5] [--workers 2]

Uploads are 1280x720 JPEGs (q90, a textured scene, each one different so none is deduplicated).
The floor is the server's own code for one frame — decode the upload (`decode_upload`: every
mode to 8-bit RGB, EXIF orientation), canonicalise, downsample and encode (a `draft` profile:
decode reduced, one resize, encode), hash the upload and the stored bytes — on one thread in
this process; "floor, 2 processes" runs it in two processes at once (what 2 cores can do at best).
Over HTTP a fresh `cctv-archive serve` per profile (its own SQLite archive, the in-process restore
queue idle) takes the same frames from N concurrent clients in this process; each client count
is measured in turn, `--repeat` times, with the floor in 2 processes measured before and after
each, and the medians reported. `--workers N` also runs `serve --workers N` beside a one-process
server at the most clients, the two taking turns round by round (their ratio per round).
A profile with no shipped model is skipped (the server refuses to start on it) and said so.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import io
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from server import Server, children, serve  # benchmarks/server.py, beside this script

from app.frames.images import decode_upload
from models.data import find_images
from models.degradation import DEFAULT_LOSSLESS_LEVEL, LOSSLESS_LEVELS, Profile
from models.registry import NoModelForProfile, model_for_profile

LOSSLESS = Profile.parse("400:2:webp-lossless")
PROFILES = [
    "400:2:webp-lossless",
    "400:2:webp-lossless:draft",
    "400:2:webp-q90",
    "400:2:avif-q50",
    "native:2:webp-lossless",
]
FORMATS = ("jpeg", "png", "webp", "bmp", "avif")


def make_frames(count: int, width: int = 1280, height: int = 720) -> list[bytes]:
    """Distinct camera-like JPEGs: smooth gradients, texture and sensor noise."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [x / width * 200, (np.sin(x / 23) * np.cos(y / 17) + 1) * 90, y / height * 220], axis=-1
    )
    frames = []
    for _ in range(count):
        noisy = base + rng.normal(0, 8, base.shape) + rng.uniform(-30, 30)
        out = io.BytesIO()
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=90)
        frames.append(out.getvalue())
    return frames


def floor_one(data: bytes, profile_text: str) -> dict[str, float]:
    """The server's image work for one upload, timed by stage (seconds). A draft profile's
    decode is the reduced one and its resize the one from there (`Profile.draft_lr`)."""
    profile = Profile.parse(profile_text)
    t0 = time.perf_counter()
    hashlib.sha256(data).hexdigest()
    t1 = time.perf_counter()
    draft = profile if profile.draft else None
    decoded = decode_upload(data, allowed=FORMATS, max_pixels=40_000_000, draft=draft)
    t2 = time.perf_counter()
    if profile.draft:
        lr = profile.draft_lr(decoded.image, decoded.upright_size, decoded.reduced_by)
    else:
        lr = profile.downsample(profile.canonicalise(decoded.image))
    t3 = time.perf_counter()
    stored = profile.encode(lr)
    t4 = time.perf_counter()
    hashlib.sha256(stored).hexdigest()
    t5 = time.perf_counter()
    return {"hash": t1 - t0 + t5 - t4, "decode": t2 - t1, "resize": t3 - t2, "encode": t4 - t3}


def level_table(lr_frames: list[Image.Image], levels: list[int]) -> list[tuple[int, float, float]]:
    """(level, ms per frame, kB per frame) of the WebP lossless encoder at each level; asserts
    each level decodes to the very pixels it was given."""
    rows = []
    for level in levels:
        started = time.perf_counter()
        encoded = [LOSSLESS.encode(lr, lossless_level=level) for lr in lr_frames]
        elapsed = (time.perf_counter() - started) / len(lr_frames) * 1e3
        for lr, data in zip(lr_frames, encoded, strict=True):
            with Image.open(io.BytesIO(data)) as back:
                if not np.array_equal(np.asarray(back.convert("RGB")), np.asarray(lr)):
                    raise AssertionError(f"lossless level {level} changed the pixels")
        rows.append((level, elapsed, statistics.mean(map(len, encoded)) / 1e3))
    return rows


def _floor_batch(args: tuple[list[bytes], str]) -> tuple[int, float]:
    """(frames done, CPU seconds this worker process spent on them)."""
    frames, profile = args
    cpu = time.process_time()
    for data in frames:
        floor_one(data, profile)
    return len(frames), time.process_time() - cpu


@dataclass(frozen=True)
class FloorRun:
    rate: float  # frames/s of all processes together
    cpu_ms: float  # CPU per frame, summed over the processes
    idle: float = 0.0  # share of the machine's CPU time idle (or waiting on I/O) meanwhile


def floor_parallel(frames: list[bytes], profile: str, processes: int) -> FloorRun:
    """The floor in `processes` processes at once (pool start-up not timed). Its CPU per frame
    is what to hold the server's against: where the cores are SMT siblings or share caches, a
    frame costs more CPU time when both work than on one thread alone."""
    chunks = [frames[i::processes] for i in range(processes)]
    with ProcessPoolExecutor(processes) as pool:
        list(pool.map(_floor_batch, [(frames[:1], profile)] * processes))  # warm the workers
        ticks = cpu_ticks()
        started = time.perf_counter()
        done = list(pool.map(_floor_batch, [(chunk, profile) for chunk in chunks]))
        elapsed = time.perf_counter() - started
        idle = idle_since(ticks)
    count = sum(n for n, _ in done)
    return FloorRun(count / elapsed, sum(cpu for _, cpu in done) / count * 1e3, idle)


def cpu_ticks() -> tuple[int, int]:
    """(idle + I/O wait, all) clock ticks of the machine's CPUs so far (Linux /proc/stat)."""
    first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    user, nice, system, idle, iowait, irq, softirq, steal = map(int, first[1:9])
    return idle + iowait, user + nice + system + idle + iowait + irq + softirq + steal


def idle_since(before: tuple[int, int]) -> float:
    """The share of the machine's CPU time spent idle since `before` (`cpu_ticks()`)."""
    idle, total = (now - then for now, then in zip(cpu_ticks(), before, strict=True))
    return idle / total if total > 0 else 0.0


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) process `pid` and the processes it started
    (`serve --workers N`: the supervisor and its workers) have used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(process_cpu_s(child) for child in children(pid))


@dataclass(frozen=True)
class HttpRun:
    rate: float  # frames/s
    server_cpu_ms: float  # server CPU per frame
    client_cpu_ms: float  # this process's CPU per frame: the clients' share of the cores
    idle: float = 0.0  # share of the machine's CPU time idle (or waiting on I/O) meanwhile


def multipart_upload(frame: bytes, camera_id: str, captured_at: str) -> tuple[str, bytes]:
    """(Content-Type, body) of one upload: the form a camera sends, made once before timing."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in (("camera_id", camera_id), ("captured_at", captured_at))
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="frame.jpg"'
        "\r\nContent-Type: image/jpeg\r\n\r\n".encode()
        + frame
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return f"multipart/form-data; boundary={boundary}", b"".join(parts)


def http_rate(server: Server, frames: list[bytes], clients: int, tag: str) -> HttpRun:
    """`clients` concurrent uploaders sending all `frames` to `server` (each 201 or fails).

    The clients share the cores with the server, so they are made cheap: each request body is
    built before the clock starts and sent over one keep-alive connection per client thread
    (http.client): 0.4-0.5 ms of CPU an upload here, against 0.9-1.1 ms with httpx."""
    requests = [
        multipart_upload(data, f"bench-{tag}", f"2024-05-01T12:00:{index % 60:02d}Z")
        for index, data in enumerate(frames)
    ]
    local = threading.local()
    opened: list[http.client.HTTPConnection] = []
    lock = threading.Lock()

    def upload(index: int) -> None:
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(urlsplit(server.base_url).netloc, timeout=120)
            local.connection = connection
            with lock:
                opened.append(connection)
        content_type, body = requests[index]
        connection.request(
            "POST",
            "/v1/frames",
            body=body,
            headers={"X-API-Key": server.key, "Content-Type": content_type},
        )
        response = connection.getresponse()
        answer = response.read()
        if response.status != 201:
            raise RuntimeError(f"upload answered {response.status}: {answer[:200]!r}")

    try:
        server_cpu = process_cpu_s(server.pid)
        client_cpu = time.process_time()
        ticks = cpu_ticks()
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(upload, range(len(frames))))
        elapsed = time.perf_counter() - started
        return HttpRun(
            len(frames) / elapsed,
            (process_cpu_s(server.pid) - server_cpu) / len(frames) * 1e3,
            (time.process_time() - client_cpu) / len(frames) * 1e3,
            idle_since(ticks),
        )
    finally:
        for connection in opened:
            connection.close()


def workers_rates(
    profile: str, batches: list[list[bytes]], warm: list[bytes], clients: int, workers: list[int]
) -> dict[int, list[HttpRun]]:
    """`serve --workers N` for each N of `workers` (each server its own archive, all started
    at once), measured in turn on each batch of uploads: rounds interleaved, so that the VM's
    drift falls on every N alike."""
    runs: dict[int, list[HttpRun]] = {n: [] for n in workers}
    with tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp, ExitStack() as stack:
        servers = {
            n: stack.enter_context(
                serve(Path(tmp) / f"w{n}", {"CCTV_PROFILE": profile, "CCTV_WEB_WORKERS": str(n)})
            )
            for n in workers
        }
        for n, server in servers.items():
            http_rate(server, warm, clients, f"warm-w{n}")
        for i, batch in enumerate(batches):
            for n, server in servers.items():
                runs[n].append(http_rate(server, batch, clients, f"w{n}-r{i}"))
    return runs


def median_floor(runs: list[FloorRun]) -> FloorRun:
    return FloorRun(
        statistics.median(r.rate for r in runs),
        statistics.median(r.cpu_ms for r in runs),
        statistics.median(r.idle for r in runs),
    )


def median_http(runs: list[HttpRun]) -> HttpRun:
    return HttpRun(
        statistics.median(r.rate for r in runs),
        statistics.median(r.server_cpu_ms for r in runs),
        statistics.median(r.client_cpu_ms for r in runs),
        statistics.median(r.idle for r in runs),
    )


def share_between(run: HttpRun, before: FloorRun, after: FloorRun) -> float:
    """The HTTP rate as a share of the floor, taken as the mean of the floors measured just
    before and just after it."""
    return run.rate / ((before.rate + after.rate) / 2)


def share_text(shares: list[float]) -> str:
    """'68%', or with several rounds their median and range: '68%, 64-71%'."""
    if len(shares) == 1:
        return f"{shares[0]:.0%}"
    low, high = round(min(shares) * 100), round(max(shares) * 100)
    return f"{statistics.median(shares):.0%}, {low}-{high}%"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="+", default=PROFILES)
    parser.add_argument("--frames", type=int, default=48, help="uploads per measurement")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--processes", type=int, default=2, help="floor processes (cores)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=5,
        help="rounds of every client count, each between two floor runs (medians reported)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        nargs="*",
        default=[],
        help="also compare `serve --workers N` for these N against 1, at the most clients",
    )
    parser.add_argument(
        "--levels",
        type=int,
        nargs="*",
        default=[0, 1, 2, 3, 6],
        help="WebP lossless levels to compare (0-9; 9 takes seconds per frame)",
    )
    parser.add_argument(
        "--level-data",
        help="HR image folder for the level table, e.g. ../shared/data/cctv/val "
        "(default: the synthetic uploads); 24 images spread over it",
    )
    args = parser.parse_args(argv)

    frames_by_round = make_frames(args.frames * (len(args.clients) + 1))
    warm, rounds = frames_by_round[:1], frames_by_round[args.frames :]
    print(
        f"{args.frames} uploads of 1280x720 JPEG q90 per measurement "
        f"(mean {statistics.mean(map(len, frames_by_round)) / 1e3:.0f} kB)\n"
    )
    stage_rows, rate_rows, worker_rows = [], [], []
    for profile in args.profiles:
        floor_one(warm[0], profile)  # first-call costs (codec set-up) are not a frame's
        sample = [floor_one(data, profile) for data in frames_by_round[: args.frames]]
        stages = {k: statistics.mean(s[k] for s in sample) * 1e3 for k in sample[0]}
        total = sum(stages.values())
        stage_rows.append((profile, stages, total))
        floor_frames = frames_by_round[: args.frames]
        try:
            model_for_profile(profile)
        except NoModelForProfile:
            parallel = floor_parallel(floor_frames, profile, args.processes)
            rate_rows.append((profile, 1e3 / total, parallel, None, None))
            continue
        with (
            tempfile.TemporaryDirectory(prefix="ingest-bench-") as tmp,
            serve(Path(tmp), {"CCTV_PROFILE": profile}) as server,
        ):
            http_rate(server, warm, 1, "warm")
            # The floor and each client count in turn, `--repeat` times, the floor measured
            # again after each: a VM's speed drifts by several % within a minute, so each HTTP
            # figure is held against the mean of the floors just before and just after it,
            # and the medians are reported.
            floors: list[FloorRun] = []
            runs: dict[int, list[HttpRun]] = {clients: [] for clients in args.clients}
            shares: dict[int, list[float]] = {clients: [] for clients in args.clients}
            floors.append(floor_parallel(floor_frames, profile, args.processes))
            for repeat in range(args.repeat):
                for i, clients in enumerate(args.clients):
                    batch = rounds[i * args.frames : (i + 1) * args.frames]
                    # A camera id of its own per repeat: the same bytes are new frames there.
                    tag = f"c{clients}-r{repeat}"
                    run = http_rate(server, batch, clients, tag)
                    floors.append(floor_parallel(floor_frames, profile, args.processes))
                    runs[clients].append(run)
                    shares[clients].append(share_between(run, floors[-2], floors[-1]))
        parallel = median_floor(floors)
        rates = {clients: median_http(done) for clients, done in runs.items()}
        rate_rows.append((profile, 1e3 / total, parallel, rates, shares))
        if args.workers:
            # The same uploads each round: a camera id of its own per round makes them new.
            batches = [rounds[: args.frames]] * args.repeat
            counts = sorted({1, *args.workers})
            worker_rows.append(
                (profile, workers_rates(profile, batches, warm, max(args.clients), counts))
            )

    print(
        "Where one frame's time goes, in-process, one thread (ms per frame; WebP lossless at "
        f"level {DEFAULT_LOSSLESS_LEVEL}, the default):\n"
    )
    print(
        "| profile | decode (draft: reduced) | canonicalise + downsample (draft: one resize) "
        "| encode | hash | total |"
    )
    print("|---|---|---|---|---|---|")
    for profile, stages, total in stage_rows:
        print(
            f"| {profile} | {stages['decode']:.1f} | {stages['resize']:.1f} "
            f"| {stages['encode']:.1f} | {stages['hash']:.1f} | {total:.1f} |"
        )
    clients_head = " | ".join(f"HTTP, {c} clients" for c in args.clients)
    repeats = (
        f"; medians of {args.repeat} rounds, each HTTP figure against the mean of the floors "
        "measured just before and just after it: the median share, then the range of the shares"
        if args.repeat > 1
        else ""
    )
    print(f"\nFrames/s (HTTP as a share of the {args.processes}-process floor{repeats}):\n")
    print(f"| profile | floor, 1 thread | floor, {args.processes} processes | {clients_head} |")
    print("|---|---|---|" + "---|" * len(args.clients))
    for profile, single, parallel, rates, shares in rate_rows:
        if rates is None:
            cells = " | ".join("no model shipped for it" for _ in args.clients)
        else:
            cells = " | ".join(
                f"{rates[c].rate:.1f} ({share_text(shares[c])})" for c in args.clients
            )
        print(f"| {profile} | {single:.1f} | {parallel.rate:.1f} | {cells} |")
    print(
        "\nCPU per frame over HTTP (ms; server: the `serve` process, all threads; clients: this "
        "process, which shares the cores), against the floor's: on one thread alone, and in "
        f"{args.processes} processes at once (their CPU per frame, summed), the fair comparison "
        "when the server's threads also share the cores; then the share of the machine's CPU "
        "time left idle (or waiting on I/O) meanwhile, from /proc/stat:\n"
    )
    clients_cpu = " | ".join(f"{c} clients: server, clients, idle" for c in args.clients)
    print(
        f"| profile | floor, 1 thread | floor, {args.processes} processes: CPU, idle "
        f"| {clients_cpu} |"
    )
    print("|---|---|---|" + "---|" * len(args.clients))
    for profile, single, parallel, rates, _ in rate_rows:
        if rates is not None:
            cells = " | ".join(
                f"{r.server_cpu_ms:.1f}, {r.client_cpu_ms:.1f}, {r.idle:.0%}"
                for r in rates.values()
            )
            print(
                f"| {profile} | {1e3 / single:.1f} | {parallel.cpu_ms:.1f}, {parallel.idle:.0%} "
                f"| {cells} |"
            )
    if worker_rows:
        print_workers(worker_rows, max(args.clients))
    if args.levels:
        print_levels(args.levels, args.level_data, frames_by_round[: args.frames])
    return 0


def print_workers(rows: list[tuple[str, dict[int, list[HttpRun]]]], clients: int) -> None:
    rounds = len(next(iter(rows[0][1].values())))
    print(
        f"\nServer processes ({clients} clients; `cctv-archive serve --workers N`, each server "
        f"its own SQLite archive; {rounds} rounds, the servers taking turns: medians, and each "
        "N's frames/s against 1 worker's in the same round, median and range):\n"
    )
    print("| profile | workers | frames/s | vs 1 worker | server CPU (ms/frame) | idle |")
    print("|---|---|---|---|---|---|")
    for profile, runs in rows:
        base = runs[1]
        for n, done in runs.items():
            ratios = [run.rate / one.rate for run, one in zip(done, base, strict=True)]
            low, high = min(ratios), max(ratios)
            spread = f" ({low:.2f}-{high:.2f})" if len(ratios) > 1 and n != 1 else ""
            middle = median_http(done)
            print(
                f"| {profile} | {n} | {middle.rate:.1f} | {statistics.median(ratios):.2f}x"
                f"{spread} | {middle.server_cpu_ms:.1f} | {middle.idle:.0%} |"
            )


def print_levels(levels: list[int], folder: str | None, uploads: list[bytes]) -> None:
    if folder:
        paths = find_images(folder)
        paths = paths[:: max(1, len(paths) // 24)][:24]
        source = f"{len(paths)} images of {folder}"
        sources: list[Path | io.BytesIO] = list(paths)
    else:
        source = f"{len(uploads)} synthetic uploads"
        sources = [io.BytesIO(data) for data in uploads]
    lr_frames = []
    for item in sources:
        with Image.open(item) as image:
            lr_frames.append(LOSSLESS.downsample(LOSSLESS.canonicalise(image)))
    rows = level_table(lr_frames, levels)
    base = next((kb for level, _, kb in rows if level == 6), None)
    print(
        f"\nWebP lossless level (CCTV_LOSSLESS_LEVEL, `cwebp -z`), {source} at 400:2 "
        "(200x200 stored); every level decodes to the same pixels (checked):\n"
    )
    print("| level | method, quality | encode (ms/frame) | stored (kB/frame) | bytes vs level 6 |")
    print("|---|---|---|---|---|")
    for level, ms, kb in rows:
        versus = f"{kb / base - 1:+.1%}" if base else "—"
        mark = " (default)" if level == DEFAULT_LOSSLESS_LEVEL else ""
        method, quality = LOSSLESS_LEVELS[level]
        print(f"| {level}{mark} | {method}, {quality} | {ms:.1f} | {kb:.2f} | {versus} |")


if __name__ == "__main__":
    sys.exit(main())
