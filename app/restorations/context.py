"""The one bundle of restore dependencies, shared by the on-demand path, the in-process pool and
the Celery task."""

from __future__ import annotations

from dataclasses import dataclass

from app.config import Settings
from app.db import SessionFactory, make_session_factory
from app.restorations.model import RestoreModel, load_restorer
from app.storage import BlobStore, build_store


@dataclass(frozen=True)
class RestoreContext:
    """Database sessions, blob store, model and settings: what every restore needs."""

    session_factory: SessionFactory
    store: BlobStore
    restorer: RestoreModel
    settings: Settings

    @classmethod
    def from_settings(cls, settings: Settings) -> RestoreContext:
        """Everything built from the configuration (the model loaded now): a Celery worker
        process calls this once."""
        return cls(
            session_factory=make_session_factory(settings),
            store=build_store(settings),
            restorer=load_restorer(settings),
            settings=settings,
        )
