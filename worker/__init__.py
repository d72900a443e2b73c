"""Celery workers for restore jobs (the scaled-out twin of the in-process pool in app/)."""
