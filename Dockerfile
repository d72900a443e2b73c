# syntax=docker/dockerfile:1
# Two images from one file:
#   docker build --target api    -t cctv-archive-api .     # CPU torch: ingest, listing, stats
#   docker build --target worker -t cctv-archive-worker .  # CUDA torch: restorations on a GPU
# Both install into a venv in a build stage and copy only the venv into a slim runtime stage,
# and both run as the unprivileged user `cctv`.

ARG PYTHON_VERSION=3.11
ARG TORCH_VERSION=2.13.0

FROM python:${PYTHON_VERSION}-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    CCTV_DATA_DIR=/var/lib/cctv-archive
RUN useradd --system --create-home --uid 10001 --user-group cctv \
 && mkdir -p /var/lib/cctv-archive \
 && chown cctv:cctv /var/lib/cctv-archive
WORKDIR /home/cctv

FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# The API never runs the network on a GPU, so it takes the CPU wheel (a few hundred MB instead
# of several GB of CUDA libraries).
FROM build AS api-build
ARG TORCH_VERSION
RUN pip install "torch==${TORCH_VERSION}" --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY app ./app
COPY worker ./worker
COPY models ./models
COPY migrations ./migrations
# The int8 extra: restorations on the CPU run on OpenVINO, in bf16 where the CPU computes it
# natively (AMX; the fp32 export is made once per start into ~/.cache), else the shipped int8
# files (models/weights/*.int8.onnx): 4-8x the plain torch path (benchmarks/RESULTS.md).
RUN pip install ".[int8]"

# PyPI's Linux torch wheel is the CUDA build; it brings its own CUDA runtime, so the host needs
# only the NVIDIA driver and the container toolkit.
FROM build AS worker-build
ARG TORCH_VERSION
RUN pip install "torch==${TORCH_VERSION}"
COPY pyproject.toml README.md ./
COPY app ./app
COPY worker ./worker
COPY models ./models
COPY migrations ./migrations
# int8 too: a worker on a host without a GPU restores on the CPU, where it pays.
RUN pip install ".[int8]"

FROM runtime AS worker
# REMAP_SIGTERM: `docker stop` hands unfinished jobs back to Redis after the grace period
# (see worker/celery_app.py) instead of leaving them for the visibility timeout.
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    REMAP_SIGTERM=SIGQUIT
COPY --from=worker-build /opt/venv /opt/venv
USER cctv
CMD ["cctv-archive", "worker"]

# Last, so a plain `docker build .` gives the small API image.
FROM runtime AS api
COPY --from=api-build /opt/venv /opt/venv
USER cctv
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=10s --start-period=60s --retries=5 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=5)"]
CMD ["cctv-archive", "serve", "--host", "0.0.0.0", "--port", "8000"]
