"""The deployment files: docker-compose.yml, Dockerfile, .dockerignore and .ci/run.

There is no Docker engine on the development machine, so the compose file is checked by
structure here and validated by `docker compose config` (or Debian's `docker-compose config`,
which .ci/run installs; without either the test fails in CI and skips elsewhere).
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import services

ROOT = Path(__file__).resolve().parents[1]
LONG_RUNNING = ["api", "worker", "worker-cpu", "postgres", "redis", "minio"]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _command(service: dict[str, Any]) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else str(command)


def test_compose_names_every_service(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {*LONG_RUNNING, "minio-init", "migrate"}


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_every_long_running_service_has_a_healthcheck(compose: dict[str, Any], name: str) -> None:
    check = compose["services"][name]["healthcheck"]
    assert check["test"], f"{name} has an empty healthcheck"
    assert check.get("interval") and check.get("retries")


def test_dependencies_wait_for_healthy_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"
    # One-shot jobs must have finished: the bucket exists and the schema is at the head.
    for name in ("api", "worker", "worker-cpu"):
        for job in ("minio-init", "migrate"):
            condition = services[name]["depends_on"][job]["condition"]
            assert condition == "service_completed_successfully", (name, job)
    assert services["migrate"]["command"] == ["cctv-archive", "migrate"]


def test_state_lives_in_named_volumes(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    assert declared == {"postgres-data", "redis-data", "minio-data"}
    mounts = {
        "postgres": "/var/lib/postgresql/data",
        "redis": "/data",
        "minio": "/data",
    }
    for name, target in mounts.items():
        volumes = compose["services"][name]["volumes"]
        assert f"{name}-data:{target}" in volumes


def test_worker_reserves_a_gpu(compose: dict[str, Any]) -> None:
    devices = compose["services"]["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]


def test_cpu_worker_is_a_profile_without_a_gpu(compose: dict[str, Any]) -> None:
    cpu = compose["services"]["worker-cpu"]
    assert cpu["profiles"] == ["cpu"]
    assert "deploy" not in cpu
    assert cpu["command"] == compose["services"]["worker"]["command"] == ["cctv-archive", "worker"]


def test_redis_is_append_only_and_never_evicts_queued_jobs(compose: dict[str, Any]) -> None:
    command = _command(compose["services"]["redis"])
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command


def test_api_listens_on_localhost_8000(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]
    assert "8000:8000" in api["ports"]
    assert "--port 8000" in _command(api) and "--host 0.0.0.0" in _command(api)


def test_app_services_are_configured_for_the_scaled_out_backends(compose: dict[str, Any]) -> None:
    for name in ("api", "migrate", "worker", "worker-cpu"):
        env = compose["services"][name]["environment"]
        assert env["CCTV_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert "@postgres:5432/" in env["CCTV_DATABASE_URL"]
        assert env["CCTV_STORAGE_URL"].startswith("s3://")
        assert env["CCTV_S3_ENDPOINT_URL"] == "http://minio:9000"
        assert env["CCTV_RESTORE_BACKEND"] == "celery"
        assert env["CCTV_BROKER_URL"] == "redis://redis:6379/0"


def test_minio_init_makes_the_bucket_the_app_uses(compose: dict[str, Any]) -> None:
    init = compose["services"]["minio-init"]
    assert "mc mb --ignore-existing" in _command(init)
    bucket = init["environment"]["CCTV_BUCKET"]
    storage_url = compose["services"]["api"]["environment"]["CCTV_STORAGE_URL"]
    assert storage_url == f"s3://{bucket}/frames"


def test_app_environment_names_only_real_settings(compose: dict[str, Any]) -> None:
    config = pytest.importorskip("app.config")
    fields = {name.upper() for name in config.Settings.model_fields}
    env = compose["services"]["api"]["environment"]
    unknown = [key for key in env if key.removeprefix("CCTV_") not in fields]
    assert not unknown, f"compose sets variables that Settings does not read: {unknown}"


def compose_config(document: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Validate a compose document with `docker compose config` (the v2 plugin) where it exists,
    else with Debian's docker-compose 1.29, which .ci/run installs: it validates without an
    engine but predates the top-level `name` key, so it gets the document without that one key
    (test_compose_project_is_named checks it)."""
    docker = shutil.which("docker")
    plugin = docker and subprocess.run([docker, "compose", "version"], capture_output=True)
    if plugin and plugin.returncode == 0:
        command = [docker, "compose"]
    elif legacy := shutil.which("docker-compose"):
        command = [legacy]
        document = {key: value for key, value in document.items() if key != "name"}
    else:
        services.unavailable("neither `docker compose` nor `docker-compose` is installed")
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    # Paths in the file (build contexts) are relative to the repository, as for the real file.
    command += ["-f", str(path), "--project-directory", str(ROOT), "config", "--quiet"]
    return subprocess.run(command, capture_output=True, text=True)


def test_docker_compose_config_accepts_the_file(compose: dict[str, Any], tmp_path: Path) -> None:
    result = compose_config(compose, tmp_path)
    assert result.returncode == 0, result.stderr


def test_docker_compose_config_refuses_a_broken_file(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["api"]["restart_polcy"] = "always"  # a misspelt key
    assert compose_config(broken, tmp_path).returncode != 0


def test_compose_project_is_named(compose: dict[str, Any]) -> None:
    assert compose["name"] == "cctv-archive"


# -- Dockerfile ------------------------------------------------------------------------------


def _stages() -> dict[str, list[str]]:
    """Dockerfile lines grouped by `FROM ... AS name` stage."""
    stages: dict[str, list[str]] = {}
    current = ""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    for line in text.splitlines():
        match = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line.strip(), re.IGNORECASE)
        if match:
            current = match.group(1)
        stages.setdefault(current, []).append(line.strip())
    return stages


@pytest.mark.parametrize("target", ["api", "worker"])
def test_image_runs_as_a_non_root_user(target: str) -> None:
    users = [line.split()[1] for line in _stages()[target] if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}


def test_api_image_takes_cpu_torch_and_worker_image_cuda_torch() -> None:
    stages = _stages()
    api_torch = [line for line in stages["api-build"] if "torch==" in line]
    worker_torch = [line for line in stages["worker-build"] if "torch==" in line]
    assert api_torch and all("whl/cpu" in line for line in api_torch)
    assert worker_torch and not any("whl/cpu" in line for line in worker_torch)


def test_images_start_the_right_process() -> None:
    stages = _stages()
    assert any('"cctv-archive", "serve"' in line for line in stages["api"] if "CMD" in line)
    assert any('"cctv-archive", "worker"' in line for line in stages["worker"] if "CMD" in line)


def test_dockerignore_keeps_local_state_out_of_the_images() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "data", "runs", "tests"} <= ignored


# -- CI --------------------------------------------------------------------------------------


def test_ci_script_is_strict_bash_and_runs_the_readme_test_command() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert script.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in script
    assert subprocess.run(["bash", "-n", str(ROOT / ".ci" / "run")]).returncode == 0
    assert "pip install -q torch==2.13.0" in script
    last_command = [line for line in script.splitlines() if line and not line.startswith("#")][-1]
    readme = ROOT / "README.md"
    if not readme.exists():
        pytest.skip("README.md not written yet")
    assert last_command in readme.read_text(), "the CI command differs from the README's"


def test_a_stopped_worker_container_hands_its_jobs_back() -> None:
    worker = " ".join(_stages()["worker"])
    assert "REMAP_SIGTERM=SIGQUIT" in worker


def test_worker_healthcheck_runs_a_task_on_that_very_worker(compose: dict[str, Any]) -> None:
    # `inspect ping` is answered by the main process even when the pool cannot run tasks, and a
    # plain worker-check would pass on any other worker: the check names this container's node.
    for name, service in compose["services"].items():
        if service.get("command", [None])[-1] == "worker":
            test = " ".join(service["healthcheck"]["test"])
            assert "cctv-archive worker-check --worker celery@$$HOSTNAME" in test, name
            assert "inspect ping" not in test


def test_compose_gives_a_stopping_worker_longer_than_its_grace(compose: dict[str, Any]) -> None:
    from worker.celery_app import DEFAULT_SHUTDOWN_GRACE_S

    period = compose["services"]["worker"]["stop_grace_period"]
    seconds = int(period[:-1]) * {"s": 1, "m": 60}[period[-1]]
    assert seconds > DEFAULT_SHUTDOWN_GRACE_S
