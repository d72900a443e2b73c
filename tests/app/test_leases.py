"""Claims on unfinished jobs shared by a server's processes (app/leases.py), on SQLite and on
PostgreSQL: one holder per job, a silent holder's jobs taken over, freed jobs taken at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from app import migrate
from app.db import make_engine, make_session_factory, utcnow
from app.leases import Leases, free_all, process_owner
from app.lifecycle.models import EvidenceExport
from app.restorations.models import RestoreJob


@pytest.fixture
def factory(database_url: str) -> Iterator[sessionmaker[Session]]:
    migrate.upgrade(database_url)
    engine = make_engine(database_url)
    yield make_session_factory(engine=engine)
    engine.dispose()


def add_jobs(factory: sessionmaker[Session], n: int, *, state: str = "queued") -> list[str]:
    now = utcnow()
    ids = [f"job{i:04d}" for i in range(n)]
    with factory.begin() as session:
        for i, job_id in enumerate(ids):
            session.add(
                RestoreJob(
                    id=job_id,
                    state=state,
                    method="edsr",
                    format="png",
                    requested_by="test",
                    created_at=now + timedelta(seconds=i),  # oldest first: job0000
                    updated_at=now,
                    attempts=0,
                )
            )
    return ids


def holders(factory: sessionmaker[Session]) -> dict[str, str | None]:
    with factory() as session:
        rows = session.execute(sa.select(RestoreJob.id, RestoreJob.owner))
        return {job_id: owner for job_id, owner in rows}


def leases(factory: sessionmaker[Session], owner: str, stale_s: float = 60.0) -> Leases:
    return Leases(RestoreJob, factory, owner, stale_s=stale_s)


def test_an_unheld_job_goes_to_the_first_claimant_only(factory) -> None:
    ids = add_jobs(factory, 3)
    a, b = leases(factory, "a"), leases(factory, "b")

    assert a.claim() == ids  # oldest first
    assert b.claim() == []
    assert b.claim([ids[0]]) == []
    assert a.claim([ids[0]]) == [ids[0]]  # its own: claiming again is harmless
    assert set(holders(factory).values()) == {"a"}


def test_finished_jobs_are_never_claimed(factory) -> None:
    add_jobs(factory, 2, state="done")

    assert leases(factory, "a").claim() == []


def test_a_silent_holders_jobs_are_taken_over_and_a_beating_ones_are_not(factory) -> None:
    ids = add_jobs(factory, 2)
    a, b = leases(factory, "a", stale_s=60), leases(factory, "b", stale_s=60)
    a.claim()
    with factory.begin() as session:  # a last beat 2 minutes ago
        session.execute(sa.update(RestoreJob).values(updated_at=utcnow() - timedelta(minutes=2)))
    a.heartbeat([ids[0]])  # ... and now beats for the first job only

    assert b.claim() == [ids[1]]
    assert holders(factory) == {ids[0]: "a", ids[1]: "b"}


def test_freed_jobs_are_taken_at_once(factory) -> None:
    ids = add_jobs(factory, 3)
    a, b = leases(factory, "a"), leases(factory, "b")
    a.claim()

    a.release(ids[:2])
    b.release(ids[2:])  # not b's to free: nothing happens

    assert b.claim() == ids[:2]
    assert holders(factory)[ids[2]] == "a"


def test_serve_frees_every_unfinished_job_and_export_before_it_starts(factory) -> None:
    ids = add_jobs(factory, 2)
    leases(factory, "a").claim()
    now = utcnow()
    with factory.begin() as session:
        session.add(
            EvidenceExport(
                id="exp1",
                state="running",
                requested_by="test",
                frame_ids=[],
                include=[],
                created_at=now,
                updated_at=now,
                owner="a",
            )
        )

    assert free_all(factory) == 3
    assert leases(factory, "b").claim() == ids
    assert Leases(EvidenceExport, factory, "b", stale_s=600).claim() == ["exp1"]


def test_the_heartbeat_keeps_a_claim_and_knows_who_holds_what(factory) -> None:
    ids = add_jobs(factory, 1)
    a, b = leases(factory, "a", stale_s=60), leases(factory, "b", stale_s=60)
    a.claim()
    with factory.begin() as session:
        session.execute(sa.update(RestoreJob).values(updated_at=utcnow() - timedelta(minutes=2)))
        job = session.get(RestoreJob, ids[0])
        assert job is not None
        assert not b.held_elsewhere(job.owner, job.updated_at)  # silent for 2 minutes
    a.heartbeat(ids)
    with factory() as session:
        job = session.get(RestoreJob, ids[0])
        assert job is not None
        assert b.held_elsewhere(job.owner, job.updated_at)
        assert not a.held_elsewhere(job.owner, job.updated_at)  # a holds it itself


def test_processes_claiming_at_once_never_share_a_job(factory) -> None:
    ids = add_jobs(factory, 200)
    claimants = [leases(factory, process_owner()) for _ in range(4)]
    taken: list[list[str]] = [[] for _ in claimants]
    start = threading.Barrier(len(claimants))

    def claim(i: int) -> None:
        start.wait()
        for chunk in range(0, len(ids), 10):  # overlapping claims, 10 ids at a time
            taken[i] += claimants[i].claim(ids[chunk : chunk + 10])

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(claimants))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    every = [job_id for got in taken for job_id in got]
    assert sorted(every) == ids  # each job taken, by exactly one
    owners = holders(factory)
    for claimant, got in zip(claimants, taken, strict=True):
        assert all(owners[job_id] == claimant.owner for job_id in got)
