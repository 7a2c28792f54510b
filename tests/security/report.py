"""`make security-report`: promise -> attacking test -> result, from the last JUnit XML.

The mapping is the table between the ``security-map`` markers in SECURITY.md (its single source
of truth). A reference is ``path/to/test_module.py`` (every test in it) or
``path/to/test_module.py::test_name`` (every parametrisation). Exit status 1 when a referenced
test failed or did not run, so the report can gate a release.

Usage: python -m tests.security.report SECURITY.md .reports/pytest.xml
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

START, END = "<!-- security-map:start -->", "<!-- security-map:end -->"


@dataclass(frozen=True)
class Ref:
    module: str  # tests/security/test_x.py
    function: str  # "" = every test in the module

    @property
    def classname(self) -> str:
        return self.module.removesuffix(".py").replace("/", ".")

    def __str__(self) -> str:
        return f"{self.module}::{self.function}" if self.function else self.module


def parse_map(markdown: str) -> list[tuple[str, list[Ref]]]:
    """The (promise, references) rows of the table in SECURITY.md."""
    if START not in markdown or END not in markdown:
        raise ValueError("SECURITY.md has no security-map table")
    body = markdown.split(START, 1)[1].split(END, 1)[0]
    rows: list[tuple[str, list[Ref]]] = []
    for line in body.strip().splitlines()[2:]:  # skip the header and the rule
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2:
            raise ValueError(f"malformed security-map row: {line!r}")
        refs = []
        for item in re.split(r"<br\s*/?>", cells[1]):
            module, _, function = item.strip().partition("::")
            refs.append(Ref(module, function))
        rows.append((cells[0], refs))
    return rows


def results(junit: str) -> dict[tuple[str, str], str]:
    """(classname, test name without parameters) -> worst outcome of its cases."""
    rank = {"passed": 0, "skipped": 1, "failed": 2}
    out: dict[tuple[str, str], str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("name", "").split("[", 1)[0]
        key = (case.get("classname", ""), name)
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
            elif child.tag == "skipped" and outcome == "passed":
                outcome = "skipped"
        if rank[outcome] >= rank[out.get(key, "passed")]:
            out[key] = outcome
    return out


def outcome_of(ref: Ref, res: dict[tuple[str, str], str]) -> tuple[str, int]:
    hits = [
        v
        for (cls, name), v in res.items()
        if cls == ref.classname and (not ref.function or name == ref.function)
    ]
    if not hits:
        return "NOT RUN", 0
    counts = Counter(hits)
    worst = "FAIL" if counts["failed"] else "SKIPPED" if counts["skipped"] else "PASS"
    return worst, len(hits)


def main(argv: list[str]) -> int:
    security_md, junit = (argv + ["SECURITY.md", ".reports/pytest.xml"][len(argv) :])[:2]
    rows = parse_map(Path(security_md).read_text())
    if not Path(junit).exists():
        print(f"{junit} not found: run `make test` first", file=sys.stderr)
        return 1
    res = results(junit)
    bad = 0
    for promise, refs in rows:
        outcomes = [(ref, *outcome_of(ref, res)) for ref in refs]
        verdict = "PASS" if all(o == "PASS" for _, o, _ in outcomes) else "FAIL"
        bad += verdict != "PASS"
        print(f"{verdict:4}  {promise}")
        for ref, outcome, n in outcomes:
            print(f"      {outcome:7} {ref!s}  ({n} test function{'s' if n != 1 else ''})")
    print(f"\n{len(rows) - bad}/{len(rows)} promises hold in {junit}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
