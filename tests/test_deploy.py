"""The deployment files agree with the code: docker-compose.yml's commands are ones the CLI
accepts, every environment name is one Settings reads, and .env.example lists them all.

(`docker compose config` and `docker build` are not available here: the files are read.)
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cli import build_arg_parser
from bot.config import Settings

ROOT = Path(__file__).resolve().parents[1]
#: Names the compose file interpolates that are not atombot settings (the database password,
#: shared by the db service and DATABASE_URL).
COMPOSE_ONLY = {"POSTGRES_PASSWORD"}


def settings_names() -> set[str]:
    """Every environment name Settings accepts (all validation aliases)."""
    names: set[str] = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, str):
            names.add(alias)
        elif alias is not None:
            names.update(str(choice) for choice in alias.choices)  # type: ignore[union-attr]
    return names


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def atombot_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run the atombot image (built from this repository)."""
    return {
        name: s
        for name, s in compose["services"].items()
        if "build" in s or str(s.get("image", "")).startswith("atombot")
    }


def env_example() -> dict[str, str | None]:
    """Names in .env.example: set (``NAME=value``) or shown commented (``# NAME=default``)."""
    names: dict[str, str | None] = {}
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^#?\s?([A-Z][A-Z0-9_]+)=(.*)$", line)
        if match:
            names[match.group(1)] = None if line.startswith("#") else match.group(2)
    return names


def test_every_atombot_command_in_compose_is_accepted_by_the_cli(compose: dict[str, Any]) -> None:
    parser = build_arg_parser()
    commands = {}
    for name, service in atombot_services(compose).items():
        command = service["command"]
        args = shlex.split(command) if isinstance(command, str) else [str(x) for x in command]
        parsed = parser.parse_args(args)  # exits (fails the test) on an unknown command
        commands[name] = (parsed.command, getattr(parsed, "no_worker", None))
    assert commands["bot"] == ("run", True)
    assert commands["worker"][0] == "worker"


def test_compose_uses_only_environment_names_settings_accepts(compose: dict[str, Any]) -> None:
    accepted = settings_names()
    for name, service in atombot_services(compose).items():
        environment = service.get("environment", {})
        assert isinstance(environment, dict), name
        unknown = set(environment) - accepted
        assert not unknown, f"{name}: {unknown} are not settings"
        assert service.get("env_file") == ".env"
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    interpolated = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))
    assert interpolated - accepted <= COMPOSE_ONLY


def test_env_example_lists_every_setting_and_nothing_else() -> None:
    listed = set(env_example())
    accepted = settings_names()
    assert accepted - listed == set(), "settings missing from .env.example"
    assert listed - accepted <= COMPOSE_ONLY, "names in .env.example that atombot ignores"
    assert listed >= COMPOSE_ONLY


def test_the_database_is_postgres_with_a_volume_and_a_health_check(
    compose: dict[str, Any],
) -> None:
    db = compose["services"]["db"]
    assert db["image"].startswith("postgres")
    assert any(v.endswith(":/var/lib/postgresql/data") for v in db["volumes"])
    assert "pg_isready" in str(db["healthcheck"]["test"])
    for name, service in atombot_services(compose).items():
        url = service["environment"]["DATABASE_URL"]
        assert url.startswith("postgresql+psycopg://") and "@db:5432/" in url, name
        assert service["depends_on"]["db"]["condition"] == "service_healthy"


def test_health_checks_ask_readyz_on_the_ops_port_with_python(compose: dict[str, Any]) -> None:
    for name, service in atombot_services(compose).items():
        port = service["environment"]["ATOMBOT_OPS_PORT"]
        test = service["healthcheck"]["test"]
        assert test[:2] == ["CMD", "python"], name  # the image has python, not curl
        assert f"127.0.0.1:{port}/readyz" in test[-1], name
        compile(test[-1], "healthcheck", "exec")
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    healthcheck = re.search(r'HEALTHCHECK .*?CMD \["python", "-c", "([^"]*)"\]', dockerfile, re.S)
    assert healthcheck is not None and "/readyz" in healthcheck.group(1)
    compile(healthcheck.group(1), "healthcheck", "exec")
    assert re.search(r"^EXPOSE .*\b9090\b", dockerfile, re.M)


def test_the_worker_is_the_cuda_build_with_a_gpu_reserved(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert worker["build"]["args"]["BASE"].startswith("nvidia/cuda:")
    assert "download.pytorch.org/whl/cu" in worker["build"]["args"]["TORCH_SPEC"]
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "ARG BASE=" in dockerfile and "FROM ${BASE}" in dockerfile
    assert "ARG TORCH_SPEC=" in dockerfile


def test_the_vllm_profile_wires_a_worker_to_the_inference_server(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    vllm = services["vllm"]
    assert vllm["profiles"] == ["vllm"]
    port = vllm["command"][vllm["command"].index("--port") + 1]
    worker = services["worker-vllm"]
    assert worker["profiles"] == ["vllm"]
    assert worker["environment"]["ATOMBOT_GENERATOR"] == "openai"
    assert worker["environment"]["ATOMBOT_OPENAI_BASE_URL"] == f"http://vllm:{port}/v1"
    assert worker["depends_on"]["vllm"]["condition"] == "service_healthy"


def test_volumes_keep_the_database_the_data_dir_and_the_model_cache(
    compose: dict[str, Any],
) -> None:
    assert set(compose["volumes"]) >= {"db-data", "atombot-data", "hf-cache"}
    for name in ("bot", "worker"):
        volumes = compose["services"][name]["volumes"]
        assert "atombot-data:/data" in volumes and "hf-cache:/cache/huggingface" in volumes
    assert "HF_HOME=/cache/huggingface" in (ROOT / "Dockerfile").read_text(encoding="utf-8")


def test_the_readme_docker_section_covers_compose_env_gpu_and_vllm() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Docker", 1)[1].split("\n## ", 1)[0]
    for needed in (
        "cp .env.example .env",
        "docker compose up -d",
        "--profile vllm",
        "nvidia",
        "/readyz",
        "docker compose run --rm bot doctor",
        "ATOMBOT_LOG_FORMAT",
    ):
        assert needed in section, needed
