"""deploy/Dockerfile, checked statically (no container engine on the CI machines): multi-stage,
the final stage holds only the installed virtualenv and runs as a numeric non-root user on a
read-only root filesystem, with health on the health port and `pipvault serve --config`."""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.k8s_manifests import REPO, pod, render

DOCKERFILE = REPO / "deploy" / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
BUILD_TOOLS = re.compile(
    r"\b(gcc|g\+\+|cc|clang|make|build-essential|apt-get|apk|dnf|yum|git|curl|wget)\b"
)


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [arg for kw, arg in self.instructions if kw == keyword]


def _logical_lines(text: str) -> list[str]:
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    assert not current, "dangling line continuation"
    return lines


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in _logical_lines(text):
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", rest.strip(), re.I)
            assert match is not None, line
            stages.append(Stage(base=match.group(1), name=match.group(2)))
        elif not stages:
            if keyword == "ARG":
                name, _, default = rest.partition("=")
                args[name.strip()] = default.strip()
        else:
            stages[-1].instructions.append((keyword, rest.strip()))
    return args, stages


@pytest.fixture(scope="module")
def parsed() -> tuple[dict[str, str], list[Stage]]:
    return parse(DOCKERFILE.read_text())


def _resolve(base: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)


def test_multi_stage_on_slim_python_311(parsed: tuple[dict[str, str], list[Stage]]) -> None:
    args, stages = parsed
    assert len(stages) >= 2
    build, final = stages[0], stages[-1]
    assert build.name is not None
    for stage in (build, final):
        image = _resolve(stage.base, args)
        assert re.fullmatch(r"python:3\.11-slim(-\w+)?", image), image
    # the builder builds wheels of BOTH distributions and installs them into one virtualenv
    run = " ".join(build.all("RUN"))
    assert "pip wheel" in run
    assert "./clients/python" in run and " . " in run
    assert "pipvault_client-" in run and "pipvault-" in run


def test_builder_installs_only_from_the_lock_files(
    parsed: tuple[dict[str, str], list[Stage]],
) -> None:
    """Issue 19: third-party packages come from requirements/requirements-image.lock with hashes checked; the
    local distributions are installed with --no-deps (nothing unlocked is resolved)."""
    _, stages = parsed
    build = stages[0]
    copies = " ".join(build.all("COPY"))
    assert (
        "requirements/requirements-image.lock" in copies
        and "requirements/requirements-bootstrap.lock" in copies
    )
    installs = [
        part for run in build.all("RUN") for part in run.split("&&") if "pip install" in part
    ]
    assert installs
    for install in installs:
        if "--require-hashes" in install:
            assert re.search(r"-r requirements/requirements-(image|bootstrap)\.lock", install), (
                install
            )
        else:
            assert "--no-deps" in install and "--no-index" in install, install
    assert any("-r requirements/requirements-image.lock" in i for i in installs)
    assert any("--no-build-isolation" in r for r in build.all("RUN")), "setuptools from the lock"


def test_image_lock_holds_every_key_provider() -> None:
    """The image can use every key provider: transit (hvac), AWS KMS (boto3), PKCS#11."""
    names = {
        line.split("==", 1)[0].strip().lower()
        for line in (REPO / "requirements/requirements-image.lock").read_text().splitlines()
        if "==" in line and not line.startswith((" ", "#"))
    }
    for package in ("hvac", "boto3", "python-pkcs11", "grpcio", "cryptography", "uvloop"):
        assert package in names, f"{package} missing from requirements/requirements-image.lock"
    for developer_tool in ("pytest", "grpcio-tools", "mypy", "moto"):
        assert developer_tool not in names, f"{developer_tool} does not belong in the image"
    image_in = (REPO / "requirements/image.in").read_text()
    assert "transit" in image_in and "aws" in image_in and "hsm" in image_in


def test_dockerignore_lets_the_lock_files_in() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert (
        "!requirements/requirements-image.lock" in patterns
        and "!requirements/requirements-bootstrap.lock" in patterns
    )


def test_final_stage_has_only_the_installed_virtualenv(
    parsed: tuple[dict[str, str], list[Stage]],
) -> None:
    _, stages = parsed
    build, final = stages[0], stages[-1]
    copies = final.all("COPY") + final.all("ADD")
    assert copies, "the final stage copies the virtualenv from the builder"
    for copy in copies:
        assert copy.startswith(f"--from={build.name} "), f"final stage copies from context: {copy}"
        sources = copy.split()[1:-1]
        assert sources == ["/opt/pipvault"], copy
    for run in final.all("RUN"):
        assert "pip install" not in run, run
        assert not BUILD_TOOLS.search(run), run
        assert "--mount=type=cache" not in run
    # pip itself is removed from the runtime image
    assert any("pip uninstall" in r for r in final.all("RUN"))
    env = " ".join(final.all("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "HOME=/tmp" in env and "TMPDIR=/tmp" in env


def test_runs_as_numeric_non_root_user(parsed: tuple[dict[str, str], list[Stage]]) -> None:
    _, stages = parsed
    final = stages[-1]
    users = final.all("USER")
    assert users, "the final stage sets USER"
    last = users[-1]
    uid, _, gid = last.partition(":")
    assert uid.isdigit() and int(uid) != 0, last
    assert gid.isdigit() and int(gid) != 0, last
    # nothing runs as root after USER in the final stage
    keywords = [kw for kw, _ in final.instructions]
    assert "RUN" not in keywords[keywords.index("USER") :]
    # and it is the user the Kubernetes sidecar runs as
    for overlay in ("dev", "prod"):
        ctx = pod(render(overlay)).sidecar["securityContext"]
        assert (ctx["runAsUser"], ctx["runAsGroup"]) == (int(uid), int(gid))


def test_entrypoint_and_health(parsed: tuple[dict[str, str], list[Stage]]) -> None:
    _, stages = parsed
    final = stages[-1]
    (entrypoint,) = final.all("ENTRYPOINT")
    command = json.loads(entrypoint)
    assert command[:3] == ["pipvault", "serve", "--config"]
    (healthcheck,) = final.all("HEALTHCHECK")
    probe = json.loads(healthcheck.split("CMD", 1)[1])
    script = probe[-1]
    assert "grpc_health.v1" in script and "SERVING" in script
    # the port it asks is the health listener the manifests probe
    health_port = next(
        p["containerPort"] for p in pod(render("prod")).sidecar["ports"] if p["name"] == "health"
    )
    assert f"127.0.0.1:{health_port}" in script
    assert str(health_port) in " ".join(final.all("EXPOSE")).split()


def test_dockerignore_keeps_tests_and_secrets_out_of_the_build_context() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "allow-list: ignore everything, then re-include what the build needs"

    def included(path: str) -> bool:
        keep = True
        for pattern in patterns:
            negate = pattern.startswith("!")
            pat = pattern[1:] if negate else pattern
            pat = pat.rstrip("/")
            if fnmatch.fnmatch(path, pat) or fnmatch.fnmatch(path, pat + "/*"):
                keep = negate
        return keep

    for path in ("pyproject.toml", "vault_server/app/_vault.py", "clients/python/pyproject.toml"):
        assert included(path), path
    for path in (
        "tests/conftest.py",
        ".venv/bin/python",
        ".pipvault/server.key",
        ".git/config",
        "bench/__main__.py",
        "deploy/k8s/base/deployment.yaml",
    ):
        assert not included(path), path


def _hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    hadolint = REPO / ".venv-manifests" / "bin" / "hadolint"
    assert hadolint.exists(), "hadolint missing: run `make install`"
    return subprocess.run(
        [str(hadolint), "--no-color", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_hadolint_passes_and_catches_a_root_image(tmp_path: Path) -> None:
    """`make manifests` lints the Dockerfile with hadolint; the lint has teeth."""
    assert _hadolint(DOCKERFILE).returncode == 0
    broken = tmp_path / "Dockerfile"
    broken.write_text(
        DOCKERFILE.read_text().replace("USER 65532:65532", "USER root")
        + "RUN apt-get update && apt-get install -y gcc\n"
    )
    out = _hadolint(broken)
    assert out.returncode != 0
    for rule in ("DL3002", "DL3008"):  # last USER is root; unpinned apt packages
        assert rule in out.stdout, out.stdout
