"""Issue 19 §1: the lock files are the only source of versions.

Every environment installs from requirements/*.lock with hashes; these tests fail when the locks
and what they were resolved from disagree (a dependency edited in pyproject.toml without
`make lock`), when a lock entry is not pinned and hashed, when an install step resolves anything
outside a lock, or when the committed stubs were not made by the locked grpcio-tools.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker, default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCKS = ROOT / "requirements"
LOCAL = {"pipvault", "pipvault-client"}


def _lock(name: str) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) for each entry of a uv/pip-compile lock file that applies here.

    The locks are universal (every platform, Python 3.11 and later), so one package may have an
    entry per marker (`numpy==2.4.6 ; python_full_version < '3.12'`); entries whose marker does
    not hold on this interpreter are skipped (their pin and hashes are still checked)."""
    environment = default_environment()
    entries: dict[str, tuple[str, list[str]]] = {}
    hashes: list[str] = []
    for line in (LOCKS / name).read_text().splitlines():
        if not line or line.lstrip().startswith("#"):
            continue
        if not line.startswith(" "):
            spec, _, marker = line.rstrip(" \\").partition(";")
            assert "==" in spec, f"{name}: not an exact pin: {line}"
            package, version = spec.strip().split("==", 1)
            hashes = []
            applies = not marker.strip() or Marker(marker.strip()).evaluate(environment)
            key = str(canonicalize_name(package)) if applies else f"~{package}=={version}"
            entries[key] = (version.strip(), hashes)
        elif "--hash=sha256:" in line:
            hashes.append(line.split("--hash=sha256:", 1)[1].strip(" \\"))
    return entries


def _declared(pyproject: Path, extras: list[str]) -> list[Requirement]:
    project = tomllib.loads(pyproject.read_text())["project"]
    raw = list(project["dependencies"])
    for extra in extras:
        raw += project["optional-dependencies"][extra]
    return [Requirement(r) for r in raw]


@pytest.mark.parametrize(
    "name",
    [
        "requirements-bootstrap.lock",
        "requirements-dev.lock",
        "requirements-image.lock",
        "requirements-manifests.lock",
    ],
)
def test_every_entry_is_pinned_and_hashed(name: str) -> None:
    entries = _lock(name)
    assert entries, f"{name} is empty"
    for package, (_, hashes) in entries.items():
        assert hashes, f"{name}: {package} has no hash"
        assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes), package
    assert not LOCAL & set(entries), "local distributions are installed from the checkout"


@pytest.mark.parametrize(
    ("lock", "extras"),
    [
        ("requirements-dev.lock", ["dev", "transit", "aws", "hsm"]),
        ("requirements-image.lock", ["transit", "aws", "hsm"]),
    ],
)
def test_lock_satisfies_every_declared_dependency(lock: str, extras: list[str]) -> None:
    entries = _lock(lock)
    environment = default_environment()
    declared = _declared(ROOT / "pyproject.toml", extras) + _declared(
        ROOT / "clients/python/pyproject.toml", []
    )
    for requirement in declared:
        name = str(canonicalize_name(requirement.name))
        if name in LOCAL:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        assert name in entries, f"{requirement} is declared but not in requirements/{lock}"
        version = entries[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements/{lock} pins {name}=={version}, which {requirement} refuses"
        )


def test_lock_inputs_have_not_changed_since_make_lock() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools/lock_digest.py")], capture_output=True, text=True
    )
    assert result.returncode == 0, "dependencies changed without `make lock`: " + result.stderr


def test_installed_environment_is_the_lock() -> None:
    """What is in .venv is exactly what requirements-dev.lock says (versions of every locked package)."""
    from importlib.metadata import PackageNotFoundError, version

    for package, (pinned, _) in _lock("requirements-dev.lock").items():
        if package.startswith("~"):
            continue  # an entry for another platform or Python
        try:
            installed = version(package)
        except PackageNotFoundError:
            pytest.fail(f"{package} is locked but not installed: run `make install`")
        assert installed == pinned, f"{package}: installed {installed}, locked {pinned}"


def test_committed_stubs_were_made_by_the_locked_grpcio_tools() -> None:
    locked = _lock("requirements-dev.lock")["grpcio-tools"][0]
    for stub in (ROOT / "clients/python/pipsync/vault/v1").glob("*_pb2_grpc.py"):
        match = re.search(r"GRPC_GENERATED_VERSION = '([^']+)'", stub.read_text())
        assert match is not None, stub
        assert match.group(1) == locked, f"{stub.name}: made by {match.group(1)}, lock {locked}"


def test_make_installs_only_from_lock_files() -> None:
    makefile = (ROOT / "Makefile").read_text()
    installs = [line for line in makefile.splitlines() if "pip $(LOCKED)" in line]
    assert installs, "the Makefile installs through the locked pip command"
    for line in installs:
        assert re.search(r"-r requirements/requirements-\w+\.lock", line), line
    assert re.search(r"^LOCKED := install .*--require-hashes", makefile, re.M)
    assert re.search(r"^LOCAL := install .*--no-deps.*--no-index", makefile, re.M)
    unlocked = [
        line
        for line in makefile.splitlines()
        if "pip install" in line
        and not line.startswith("#")
        and "uv==" not in line
        and "$(LOCKED)" not in line
    ]
    assert not unlocked, f"an install that is not from a lock: {unlocked}"
