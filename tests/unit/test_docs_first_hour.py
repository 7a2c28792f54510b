"""Docs a new user reads in the first hour say what is true (issue 19 §8)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = [
    ROOT / "README.md",
    ROOT / "docs/operations.md",
    ROOT / "clients/python/README.md",
    *sorted((ROOT / "clients/python/pipvault_client").glob("*.py")),
    *sorted((ROOT / "clients/python/vaultctl").glob("*.py")),
]


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end != -1 else None]


def test_operations_guide_names_every_key_provider_the_server_builds() -> None:
    source = (ROOT / "vault_server/crypto/providers/__init__.py").read_text()
    schemes = re.findall(r'if scheme == "([a-z0-9+-]+)"', source)
    assert {"local", "vault-transit", "aws-kms", "pkcs11"} <= set(schemes)
    guide = _section((ROOT / "docs/operations.md").read_text(), "## Migrate to an external KMS")
    for scheme in schemes:
        assert f"`{scheme}://" in guide, scheme
    assert "once your version has them" not in guide


def test_the_data_socket_has_one_name_everywhere() -> None:
    deployment = (ROOT / "deploy/k8s/base/deployment.yaml").read_text()
    assert "unix:///run/pipvault/data.sock" in deployment  # what the pod really uses
    for doc in DOCS:
        text = doc.read_text()
        assert "/run/pipvault/vault.sock" not in text, doc
    client_readme = (ROOT / "clients/python/README.md").read_text()
    assert "unix:///run/pipvault/data.sock" in client_readme


def test_quickstart_says_what_make_run_costs() -> None:
    quickstart = _section((ROOT / "README.md").read_text(), "## Quickstart")
    for fact in ("1.1 GB", "1.6 GB", "sudo", "apt-get", "SoftHSM2", "Debian"):
        assert fact in quickstart, fact
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^run: \$\(STAMP\)$", makefile, re.M)  # only .venv, as the Quickstart says
