"""Footage lifecycle: retention and quotas per camera, legal holds, the originals window, and
signed evidence exports."""
