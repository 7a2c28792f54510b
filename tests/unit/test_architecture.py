"""Issue 20: the capability packages keep a small public surface.

Outside a capability package nothing imports its private modules (``vault_server.<package>._*``):
the edge (rpc, auth), the composition root, the CLI and the other packages use what the
package's ``__init__`` exports. (Tests may reach into private modules; the server may not.)
The layering itself is import-linter's job (``make lint``: pyproject's contracts)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "vault_server"
CAPABILITIES = (
    "audit", "custody", "domain", "health", "keys", "orders", "paging", "signing", "workspaces",
)  # fmt: skip


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
            found += [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return found


def test_every_capability_package_exists_with_a_public_surface() -> None:
    for name in CAPABILITIES:
        init = SERVER / name / "__init__.py"
        assert init.exists(), name
        assert '"""' in init.read_text()[:3], f"{name}/__init__.py says what the package holds"
        assert "__all__" in init.read_text(), name
    assert not (SERVER / "services").exists(), "the flat services/ folder is gone"


def test_nothing_outside_a_package_imports_its_private_modules() -> None:
    offences = []
    for path in SERVER.rglob("*.py"):
        owner = path.relative_to(SERVER).parts[0]
        for module in _imports(path):
            parts = module.split(".")
            if len(parts) < 3 or parts[0] != "vault_server" or parts[1] not in CAPABILITIES:
                continue
            if parts[2].startswith("_") and parts[1] != owner:
                offences.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not offences, "\n".join(offences)


def test_no_module_outgrows_its_job() -> None:
    """About 300 lines per module (DESIGN.md section 2): no module of a capability package or of
    the composition root is allowed past 360."""
    long = [
        f"{p.relative_to(ROOT)}: {n}"
        for p in SERVER.rglob("*.py")
        if p.relative_to(SERVER).parts[0] in (*CAPABILITIES, "app")
        and (n := len(p.read_text().splitlines())) > 360
    ]
    assert not long, long
