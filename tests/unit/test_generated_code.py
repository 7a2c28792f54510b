"""The committed stubs are exactly what `buf generate` makes from the .proto files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "clients/python/pipsync/vault/v1"


def test_generated_code_has_not_drifted(tmp_path: Path) -> None:
    buf = ROOT / "node_modules/.bin/buf"
    assert buf.exists(), "run `make install` (buf comes from the npm registry)"
    template = (ROOT / "buf.gen.yaml").read_text()
    template = template.replace(".venv/bin/", f"{ROOT}/.venv/bin/")
    template = template.replace("tools/protoc-gen", f"{ROOT}/tools/protoc-gen")
    template = template.replace("out: clients/python", f"out: {tmp_path}")
    (tmp_path / "buf.gen.yaml").write_text(template)
    shutil.copy(ROOT / "buf.yaml", tmp_path / "buf.yaml")
    shutil.copytree(ROOT / "proto", tmp_path / "proto")
    subprocess.run([str(buf), "generate", "--template", "buf.gen.yaml"], cwd=tmp_path, check=True)
    fresh = {
        p.relative_to(tmp_path / "pipsync/vault/v1"): p.read_bytes()
        for p in (tmp_path / "pipsync/vault/v1").glob("*_pb2*")
    }
    committed = {p.relative_to(GENERATED): p.read_bytes() for p in GENERATED.glob("*_pb2*")}
    assert sorted(fresh) == sorted(committed), "generated file set differs: run `make proto`"
    drifted = [str(name) for name in fresh if fresh[name] != committed[name]]
    assert not drifted, f"stale generated code (run `make proto`): {drifted}"


def test_buf_lint_is_clean() -> None:
    result = subprocess.run(
        [str(ROOT / "node_modules/.bin/buf"), "lint"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
