"""deploy/compose.yaml: PostgreSQL + Milvus + N API replicas + a writer + the gateway.

No Docker engine is needed: the file is checked for the structure the README promises, its
settings against `Settings`, the gateway's routing against the services, and, where a
Compose binary is installed (`docker compose` or Debian's `docker-compose`), against
Compose's own schema with `config -q`, which needs no engine.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from indexer.settings import Settings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
NGINX = DEPLOY / "nginx.conf"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def test_compose_runs_postgres_milvus_replicas_a_writer_and_a_gateway(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]

    assert set(services) == {"postgres", "etcd", "minio", "milvus", "writer", "api", "gateway"}
    assert services["api"]["deploy"]["replicas"] == "${API_REPLICAS:-3}"
    assert "deploy" not in services["writer"]  # exactly one writer
    published = {name for name, s in services.items() if s.get("ports")}
    assert published == {"gateway"}
    for name in ("api", "writer"):
        service = services[name]
        assert service["command"] == ["serve"]  # keys required: no --allow-open
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert service["depends_on"]["milvus"]["condition"] == "service_healthy"
    for needed in ("postgres", "etcd", "minio", "milvus"):
        assert "healthcheck" in services[needed], needed
    declared = set(compose["volumes"])
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert source.startswith("./") or source in declared, source


def test_compose_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service["image"]
        tag = image.rsplit(":", 1)[-1] if ":" in image.rsplit("/", 1)[-1] else ""
        assert tag and tag != "latest", f"{name}: {image} is not pinned"


def test_compose_settings_exist_and_point_at_the_services(compose: dict[str, Any]) -> None:
    env = compose["services"]["api"]["environment"]
    fields = {f"RAGSEARCH_{name.upper()}" for name in Settings.model_fields}

    for variable in env:
        assert variable in fields or variable == "ZHIPUAI_API_KEY", variable
    assert re.fullmatch(
        r"postgresql\+psycopg://ragsearch:\$\{POSTGRES_PASSWORD:-ragsearch\}@postgres:5432/ragsearch",
        env["RAGSEARCH_CATALOG_URL"],
    )
    assert env["RAGSEARCH_VECTOR_STORE"] == "http://milvus:19530"
    assert compose["services"]["writer"]["environment"] == env
    example = (DEPLOY / ".env.example").read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{([A-Z_]+)", COMPOSE.read_text(encoding="utf-8")))
    assert used <= set(re.findall(r"^([A-Z_]+)=", example, re.M))


def test_gateway_sends_writes_to_the_writer_and_streams(compose: dict[str, Any]) -> None:
    conf = NGINX.read_text(encoding="utf-8")
    gateway = compose["services"]["gateway"]

    assert "./nginx.conf:/etc/nginx/conf.d/default.conf:ro" in gateway["volumes"]
    assert re.findall(r"server (\w+):8000;", conf) == ["api", "writer"]
    routes = dict(re.findall(r'"(~\^[^"]+)"\s+(\w+);', conf))
    assert set(routes.values()) == {"writer"}

    def backend(method: str, path: str) -> str:
        line = f"{method} {path}"
        hits = [b for pattern, b in routes.items() if re.search(pattern[1:], line)]
        return hits[0] if hits else "readers"

    assert backend("POST", "/v1/collections/docs/documents") == "writer"
    assert backend("DELETE", "/v1/collections/docs") == "writer"
    assert backend("POST", "/v1/jobs/12/resume") == "writer"
    assert backend("POST", "/v1/keys") == "writer"
    assert backend("POST", "/v1/search") == "readers"
    assert backend("POST", "/v1/answer") == "readers"
    assert backend("GET", "/v1/collections/docs/documents") == "readers"
    assert backend("GET", "/console") == "readers"
    assert "proxy_buffering off;" in conf  # Server-Sent Events pass through at once


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy is not None else None


def test_compose_file_passes_composes_own_validation() -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("no `docker compose` or `docker-compose` installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("API_", "POSTGRES_"))}
    result = subprocess.run(
        [*command, "-f", str(COMPOSE), "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
        env={**env, "API_REPLICAS": "2"},
    )

    assert result.returncode == 0, result.stderr
