"""Claims on unfinished jobs shared by a server's processes (app/leases.py), on SQLite and on
PostgreSQL: one holder per job, a silent holder's jobs taken over, freed jobs taken at once."""

from __future__ import annotations

import threading
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from app.db import utcnow
from app.leases import Leases, free_all, process_owner
from app.lifecycle.models import EvidenceExport
from app.restorations.models import RestoreJob


def add_jobs(migrated: sessionmaker[Session], n: int, *, state: str = "queued") -> list[str]:
    now = utcnow()
    ids = [f"job{i:04d}" for i in range(n)]
    with migrated.begin() as session:
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


def holders(migrated: sessionmaker[Session]) -> dict[str, str | None]:
    with migrated() as session:
        rows = session.execute(sa.select(RestoreJob.id, RestoreJob.owner))
        return {job_id: owner for job_id, owner in rows}


def leases(migrated: sessionmaker[Session], owner: str, stale_s: float = 60.0) -> Leases:
    return Leases(RestoreJob, migrated, owner, stale_s=stale_s)


def test_an_unheld_job_goes_to_the_first_claimant_only(migrated) -> None:
    ids = add_jobs(migrated, 3)
    a, b = leases(migrated, "a"), leases(migrated, "b")

    assert a.claim() == ids  # oldest first
    assert b.claim() == []
    assert b.claim([ids[0]]) == []
    assert a.claim([ids[0]]) == [ids[0]]  # its own: claiming again is harmless
    assert set(holders(migrated).values()) == {"a"}


def test_finished_jobs_are_never_claimed(migrated) -> None:
    add_jobs(migrated, 2, state="done")

    assert leases(migrated, "a").claim() == []


def test_a_silent_holders_jobs_are_taken_over_and_a_beating_ones_are_not(migrated) -> None:
    ids = add_jobs(migrated, 2)
    a, b = leases(migrated, "a", stale_s=60), leases(migrated, "b", stale_s=60)
    a.claim()
    with migrated.begin() as session:  # a last beat 2 minutes ago
        session.execute(sa.update(RestoreJob).values(updated_at=utcnow() - timedelta(minutes=2)))
    a.heartbeat([ids[0]])  # ... and now beats for the first job only

    assert b.claim() == [ids[1]]
    assert holders(migrated) == {ids[0]: "a", ids[1]: "b"}


def test_freed_jobs_are_taken_at_once(migrated) -> None:
    ids = add_jobs(migrated, 3)
    a, b = leases(migrated, "a"), leases(migrated, "b")
    a.claim()

    a.release(ids[:2])
    b.release(ids[2:])  # not b's to free: nothing happens

    assert b.claim() == ids[:2]
    assert holders(migrated)[ids[2]] == "a"


def test_serve_frees_every_unfinished_job_and_export_before_it_starts(migrated) -> None:
    ids = add_jobs(migrated, 2)
    leases(migrated, "a").claim()
    now = utcnow()
    with migrated.begin() as session:
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

    assert free_all(migrated) == 3
    assert leases(migrated, "b").claim() == ids
    assert Leases(EvidenceExport, migrated, "b", stale_s=600).claim() == ["exp1"]


def test_the_heartbeat_keeps_a_claim_and_knows_who_holds_what(migrated) -> None:
    ids = add_jobs(migrated, 1)
    a, b = leases(migrated, "a", stale_s=60), leases(migrated, "b", stale_s=60)
    a.claim()
    with migrated.begin() as session:
        session.execute(sa.update(RestoreJob).values(updated_at=utcnow() - timedelta(minutes=2)))
        job = session.get(RestoreJob, ids[0])
        assert job is not None
        assert not b.held_elsewhere(job.owner, job.updated_at)  # silent for 2 minutes
    a.heartbeat(ids)
    with migrated() as session:
        job = session.get(RestoreJob, ids[0])
        assert job is not None
        assert b.held_elsewhere(job.owner, job.updated_at)
        assert not a.held_elsewhere(job.owner, job.updated_at)  # a holds it itself


def test_processes_claiming_at_once_never_share_a_job(migrated) -> None:
    ids = add_jobs(migrated, 200)
    claimants = [leases(migrated, process_owner()) for _ in range(4)]
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
    owners = holders(migrated)
    for claimant, got in zip(claimants, taken, strict=True):
        assert all(owners[job_id] == claimant.owner for job_id in got)
