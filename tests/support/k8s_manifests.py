"""Render the kustomize overlays under deploy/k8s with the real ``kubectl kustomize`` and look
things up in the rendered objects (tests/deploy)."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
SIDECAR = "pipvault"
APP = "router"

Obj = dict[str, Any]


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        raise AssertionError("kubectl is required to render deploy/k8s (installed on CI machines)")
    return found


@cache
def render_text(overlay: str) -> str:
    out = subprocess.run(
        [kubectl(), "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def render(overlay: str) -> list[Obj]:
    return [d for d in yaml.safe_load_all(render_text(overlay)) if d]


def one(docs: list[Obj], kind: str, name: str | None = None) -> Obj:
    found = [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def all_of(docs: list[Obj], kind: str) -> list[Obj]:
    return [d for d in docs if d["kind"] == kind]


@dataclass(frozen=True)
class PodView:
    """The routing Deployment's Pod template, with the containers split by role."""

    spec: Obj

    @property
    def init_containers(self) -> list[Obj]:
        return list(self.spec.get("initContainers", []))

    @property
    def containers(self) -> list[Obj]:
        return list(self.spec["containers"])

    @property
    def every_container(self) -> list[Obj]:
        return self.init_containers + self.containers

    def container(self, name: str) -> Obj:
        found = [c for c in self.every_container if c["name"] == name]
        assert len(found) == 1, f"container {name}: {len(found)} found"
        return found[0]

    @property
    def sidecar(self) -> Obj:
        return self.container(SIDECAR)

    @property
    def app(self) -> Obj:
        return self.container(APP)

    def volume(self, name: str) -> Obj:
        found = [v for v in self.spec.get("volumes", []) if v["name"] == name]
        assert len(found) == 1, f"volume {name}: {len(found)} found"
        return found[0]

    def mounts(self, container: Obj) -> dict[str, Obj]:
        """volume name -> mount, for one container."""
        return {m["name"]: m for m in container.get("volumeMounts", [])}

    def containers_mounting(self, volume: str) -> list[str]:
        return [c["name"] for c in self.every_container if volume in self.mounts(c)]


def pod(docs: list[Obj]) -> PodView:
    deployment = one(docs, "Deployment", "router")
    return PodView(deployment["spec"]["template"]["spec"])


def configmap(docs: list[Obj], prefix: str) -> Obj:
    found = [d for d in all_of(docs, "ConfigMap") if d["metadata"]["name"].startswith(prefix)]
    assert len(found) == 1, f"ConfigMap {prefix}*: {len(found)} found"
    return found[0]
