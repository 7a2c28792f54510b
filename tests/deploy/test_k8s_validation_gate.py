"""`make manifests` (run by `make test`) validates the rendered overlays with
deploy/k8s/validate.sh. These tests attack that gate: a rendered overlay with an unknown field,
or with a weakened security context, must make it fail, naming what is wrong."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.k8s_manifests import K8S, REPO, SIDECAR, render

VALIDATE = K8S / "validate.sh"
VENV = REPO / ".venv-manifests"


@pytest.fixture(scope="module", autouse=True)
def _tools() -> None:
    for tool in ("kubernetes-validate", "checkov"):
        assert (VENV / "bin" / tool).exists(), f"{tool} missing: run `make install`"


def _validate(tmp_path: Path, docs: list[dict]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return subprocess.run(
        [str(VALIDATE), str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "MANIFESTS_VENV": str(VENV), "HOME": str(tmp_path)},
    )


def _sidecar(docs: list[dict]) -> dict:
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    return next(
        c for c in deployment["spec"]["template"]["spec"]["initContainers"] if c["name"] == SIDECAR
    )


def test_an_unknown_field_fails_strict_schema_validation(tmp_path: Path) -> None:
    docs = render("prod")
    _sidecar(docs)["readinessProbe"]["grpc"]["host"] = "127.0.0.1"  # not a field of GRPCAction
    out = _validate(tmp_path, docs)
    assert out.returncode != 0
    assert "'host' was unexpected" in out.stdout + out.stderr


def test_a_weakened_security_context_fails_the_checkov_set(tmp_path: Path) -> None:
    docs = render("dev")
    ctx = _sidecar(docs)["securityContext"]
    ctx["readOnlyRootFilesystem"] = False
    ctx["allowPrivilegeEscalation"] = True
    ctx["capabilities"] = {"add": ["NET_RAW"]}
    out = _validate(tmp_path, docs)
    assert out.returncode != 0
    report = out.stdout
    for check in ("CKV_K8S_20", "CKV_K8S_22", "CKV_K8S_28"):
        assert f"Check: {check}:" in report, check
    assert "Failed checks: 0" not in report
