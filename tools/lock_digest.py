"""Record (and check) what the lock files were resolved from.

`make lock` writes the SHA-256 of every lock input (the dependency declarations of both
pyproject.toml files and requirements/*.in) into requirements/inputs.sha256; the unit test
`test_lock_files` recomputes it, so a dependency edited in pyproject.toml without `make lock`
fails the suite instead of being silently ignored by the locked install.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "requirements/inputs.sha256"


def _declared(pyproject: Path) -> dict[str, object]:
    project = tomllib.loads(pyproject.read_text())["project"]
    return {
        "dependencies": project.get("dependencies", []),
        "optional-dependencies": project.get("optional-dependencies", {}),
        "requires-python": project.get("requires-python"),
    }


def inputs_digest() -> str:
    """One digest over every input a lock is resolved from (order-independent of the OS)."""
    parts: dict[str, object] = {
        "pyproject.toml": _declared(ROOT / "pyproject.toml"),
        "clients/python/pyproject.toml": _declared(ROOT / "clients/python/pyproject.toml"),
    }
    for source in sorted((ROOT / "requirements").glob("*.in")):
        parts[f"requirements/{source.name}"] = source.read_text()
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="record the current digest")
    args = parser.parse_args()
    digest = inputs_digest()
    if args.write:
        RECORD.write_text(digest + "\n")
        return 0
    recorded = RECORD.read_text().strip() if RECORD.exists() else ""
    if recorded != digest:
        print("lock inputs changed since the last `make lock`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
