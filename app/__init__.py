"""cctv-archive: the service (API, configuration, metadata, blob storage, restorations)."""

__version__ = "0.1.0"
