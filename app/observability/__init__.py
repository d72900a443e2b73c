"""Observability: structured logs with a request id that follows a restore to the worker, and
Prometheus metrics for the API (/metrics) and each Celery pool process."""
