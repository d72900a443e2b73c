"""What the admin and client commands share: one-line errors and plain tables."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.lifecycle.bundle import Verdict


class CommandError(Exception):
    """A failure to report in one line, without a traceback."""


def counted(n: int, noun: str) -> str:
    """'1 frame', '2 frames'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def day(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else ""


def table(header: list[str], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(v)) for v in column) for column in zip(header, *rows, strict=False)]
    for values in [header, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(values, widths, strict=True)).rstrip())


def timestamp(text: str) -> datetime:
    """An ISO 8601 moment with a UTC offset (argparse type)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError("give a UTC offset, e.g. 2024-05-01T12:00:00Z")
    return moment


def report_verdict(verdict: Verdict) -> bool:
    """Print an evidence bundle's verification (`bundle.verify_bundle`): each problem, then the
    outcome and the signing key's fingerprint when it verified. True if it did."""
    for problem in verdict.problems:
        print(f"FAILED {problem}")
    if not verdict.ok:
        print(f"NOT VERIFIED: {len(verdict.problems)} problems")
        return False
    print(f"OK: {verdict.files_checked} files match the manifest; signature valid")
    print(f"signed by key {verdict.key_fingerprint}")
    return True
