"""`make run` works without SoftHSM2 (issue 19 §8): only `make install` / `make test` (the PKCS#11
tests) install it, with apt-get (through sudo when not root). Asked of make itself, dry-run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _dry_run(target: str) -> str:
    # SOFTHSM_LIB pointing nowhere: were the softhsm target reached, its apt-get would show.
    result = subprocess.run(
        ["make", "-n", "-C", str(ROOT), target, "SOFTHSM_LIB=/nonexistent/libsofthsm2.so"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("target", ["run", "demo"])
def test_run_and_demo_never_install_softhsm(target: str) -> None:
    plan = _dry_run(target)
    assert "apt-get" not in plan and "softhsm" not in plan
    assert "pipvault" in plan  # it does run the vault


@pytest.mark.parametrize("target", ["test", "install"])
def test_test_and_install_still_install_softhsm(target: str) -> None:
    assert "apt-get install -y -qq softhsm2" in _dry_run(target)
