"""The promise -> test map in SECURITY.md stays honest: every reference names a test that exists,
every attack module of tests/security is listed, and the report reads JUnit results right."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.security.report import Ref, main, outcome_of, parse_map, results

ROOT = Path(__file__).resolve().parents[2]


def _functions(module: Path) -> set[str]:
    tree = ast.parse(module.read_text())
    return {
        n.name
        for n in tree.body
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name.startswith("test_")
    }


def test_every_reference_exists_and_every_security_module_is_mapped() -> None:
    rows = parse_map((ROOT / "SECURITY.md").read_text())
    assert len(rows) >= 6
    listed: set[str] = set()
    for promise, refs in rows:
        assert refs, promise
        for ref in refs:
            path = ROOT / ref.module
            assert path.is_file(), f"{promise}: {ref} does not exist"
            if ref.function:
                assert ref.function in _functions(path), f"{promise}: {ref} does not exist"
            listed.add(ref.module)
    modules = {
        f"tests/security/{p.name}"
        for p in (ROOT / "tests/security").glob("test_c*.py")
        if p.name != "test_c00_security_map.py"
    }
    assert modules - listed == set(), "security modules missing from SECURITY.md"


def test_the_report_maps_junit_results(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    md = tmp_path / "SECURITY.md"
    md.write_text(
        "x\n<!-- security-map:start -->\n| promise | attacking tests |\n|---|---|\n"
        "| P1 a | tests/security/test_a.py |\n"
        "| P2 b | tests/security/test_b.py::test_one<br>tests/security/test_c.py |\n"
        "<!-- security-map:end -->\n"
    )
    xml = tmp_path / "r.xml"
    xml.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.security.test_a" name="test_x[sqlite]"/>'
        '<testcase classname="tests.security.test_a" name="test_x[postgres]"/>'
        '<testcase classname="tests.security.test_b" name="test_one"><failure message="boom"/></testcase>'
        '<testcase classname="tests.security.test_b" name="test_two"/>'
        "</testsuite></testsuites>"
    )
    res = results(str(xml))
    assert outcome_of(Ref("tests/security/test_a.py", ""), res) == ("PASS", 1)
    assert outcome_of(Ref("tests/security/test_b.py", "test_one"), res) == ("FAIL", 1)
    assert outcome_of(Ref("tests/security/test_c.py", ""), res) == ("NOT RUN", 0)
    assert main([str(md), str(xml)]) == 1
    out = capsys.readouterr().out
    assert (
        "PASS  P1 a" in out and "FAIL  P2 b" in out and "NOT RUN" in out and "1/2 promises" in out
    )
