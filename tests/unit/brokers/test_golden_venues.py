"""Every venue builds, refuses and parses exactly what ``golden/venues.json`` recorded.

The golden file pins signatures byte for byte (see ``golden_venues.py`` for what it covers and
how its fake credentials are derived). A difference here means a caller or a venue would see a
change: if it is intended, re-record with ``python tests/unit/brokers/golden_venues.py --record``
and say why in the commit.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from golden_venues import GOLDEN, adapters, venue_record

RECORDED: dict[str, Any] = json.loads(GOLDEN.read_text())
PATHS: list[str] = RECORDED["endpoint_paths"]
NAMES = sorted(set(RECORDED) - {"endpoint_paths"})
SECTIONS = ("attributes", "scope_vocabulary", "base_urls", "builds", "endpoints",
            "normalize_scopes", "permissions")  # fmt: skip


@pytest.fixture(scope="module")
def computed() -> dict[str, Any]:
    return {
        name: venue_record(venue, adapter, PATHS) for name, (venue, adapter) in adapters().items()
    }


def test_every_adapter_is_recorded() -> None:
    assert sorted(adapters()) == NAMES


@pytest.mark.parametrize("section", SECTIONS)
@pytest.mark.parametrize("name", NAMES)
def test_matches_golden(computed: dict[str, Any], name: str, section: str) -> None:
    expected, actual = RECORDED[name][section], computed[name][section]
    if isinstance(expected, dict):
        assert sorted(actual) == sorted(expected), "cases added or lost"
        diff = [key for key in expected if actual[key] != expected[key]]
        assert not diff, (
            f"{len(diff)} cases differ, first {diff[0]}: {actual[diff[0]]!r} != {expected[diff[0]]!r}"
        )
    else:
        assert actual == expected


def test_golden_credentials_are_obviously_fake() -> None:
    text = GOLDEN.read_text()
    assert "golden-test-secret-" in text
    assert "BEGIN" not in text  # private keys are derived in the test, never stored
