"""Which server process holds which unfinished job (restore jobs, evidence exports).

A server may run as several processes on one archive (`cctv-archive serve --workers N`), each
with its own in-process restore pool and export thread. A job is run by the process that holds
it: its row's `owner` names that process and its `updated_at` is the holder's heartbeat. A
process takes a job with an atomic claim (one UPDATE whose condition only one process can meet),
so two processes never run the same job; a job whose holder has not been heard from for the
stale limit (the process died) is claimed by the next process that looks. `serve` frees every
unfinished job before it starts its processes (none of them holds one yet), and a process that
stops frees the jobs it had not begun, so a restart resumes them at once.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

import sqlalchemy as sa

from app.db import SessionFactory, utcnow
from app.lifecycle.models import EvidenceExport
from app.restorations.models import RestoreJob

UNFINISHED = ("queued", "running")
CHUNK = 500  # ids per statement

JobTable = type[RestoreJob] | type[EvidenceExport]


def _process_prefix(pid: int) -> str:
    return f"{socket.gethostname()[:32]}:{pid}:"


def process_owner() -> str:
    """A name for this process as a holder: host and pid, and a random part (pids are reused)."""
    return f"{_process_prefix(os.getpid())}{uuid.uuid4().hex[:12]}"


def _chunks(ids: Iterable[str]) -> Iterator[list[str]]:
    it = iter(ids)
    while chunk := list(islice(it, CHUNK)):
        yield chunk


@dataclass(frozen=True)
class Leases:
    """This process's hold on the rows of `table` (RestoreJob or EvidenceExport)."""

    table: JobTable
    session_factory: SessionFactory
    owner: str
    stale_s: float

    def claim(self, ids: Iterable[str] | None = None) -> list[str]:
        """Take the unfinished jobs (all, or those of `ids`) that no live process holds: held by
        no one, by this process, or by one silent for `stale_s`. Returns the ids taken, oldest
        first. Of two processes claiming one job at once, exactly one gets it."""
        t = self.table
        now = utcnow()
        free = sa.or_(
            t.owner.is_(None),
            t.owner == self.owner,
            t.updated_at < now - timedelta(seconds=self.stale_s),
        )
        statement = (
            sa.update(t)
            .where(t.state.in_(UNFINISHED), free)
            .values(owner=self.owner, updated_at=now)
            .returning(t.id, t.created_at)
            .execution_options(synchronize_session=False)
        )
        taken: list[tuple[datetime, str]] = []
        with self.session_factory.begin() as session:
            if ids is None:
                taken += [(row.created_at, row.id) for row in session.execute(statement)]
            else:
                for chunk in _chunks(ids):
                    rows = session.execute(statement.where(t.id.in_(chunk)))
                    taken += [(row.created_at, row.id) for row in rows]
        return [job_id for _, job_id in sorted(taken)]

    def heartbeat(self, ids: Iterable[str]) -> None:
        """Say that this process still holds `ids` (those of them it holds and are unfinished)."""
        self._update_held(ids, self.table.state.in_(UNFINISHED), updated_at=utcnow())

    def release(self, ids: Iterable[str]) -> None:
        """Let go of `ids` (those this process holds): any process may take them at once."""
        self._update_held(ids, sa.true(), owner=None)

    def _update_held(self, ids: Iterable[str], condition: Any, **values: Any) -> None:
        """Set `values` on those of `ids` this process holds and that meet `condition`."""
        t = self.table
        with self.session_factory.begin() as session:
            for chunk in _chunks(ids):
                session.execute(
                    sa.update(t)
                    .where(t.id.in_(chunk), t.owner == self.owner, condition)
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )

    def held_elsewhere(self, owner: str | None, updated_at: datetime) -> bool:
        """Whether a job with this `owner` and heartbeat is held by another live process."""
        fresh = updated_at >= utcnow() - timedelta(seconds=self.stale_s)
        return owner is not None and owner != self.owner and fresh


def free_all(session_factory: SessionFactory, *, pid: int | None = None) -> int:
    """Let go of every unfinished job (`serve`, before its processes start: none holds one yet),
    or of those process `pid` of this host held (it died). Returns how many were held."""
    freed = 0
    with session_factory.begin() as session:
        for table in (RestoreJob, EvidenceExport):
            held = (
                table.owner.is_not(None)
                if pid is None
                else table.owner.startswith(_process_prefix(pid), autoescape=True)
            )
            result = session.execute(
                sa.update(table)
                .where(table.state.in_(UNFINISHED), held)
                .values(owner=None)
                .execution_options(synchronize_session=False)
            )
            freed += result.rowcount or 0
    return freed
