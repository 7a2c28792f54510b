"""Settings of the audit event sink: each invalid combination stops start-up naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from vault_server.config import ConfigError, load_settings


def test_a_file_sink_needs_its_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"audit\.event_file"):
        load_settings(None, mode="dev", home=str(tmp_path), audit={"event_sink": "file"})
    with pytest.raises(ConfigError, match=r"audit\.event_sink"):
        load_settings(None, mode="dev", home=str(tmp_path), audit={"event_sink": "syslog"})
    ok = load_settings(
        None,
        mode="dev",
        home=str(tmp_path),
        audit={"event_sink": "file", "event_file": str(tmp_path / "e.jsonl")},
    )
    assert ok.audit.event_sink == "file" and ok.audit.event_sink_interval_s == 1.0


def test_stdout_in_production_needs_a_position_file(tmp_path: Path) -> None:
    base = {
        "mode": "production",
        "database_url": "sqlite:///x.db",
        "policy_file": str(tmp_path / "p.yaml"),
        "keys": {"providers": {"local": f"local://{tmp_path}/k.json"}},
    }
    audit = {"checkpoint_key_file": str(tmp_path / "a.key"), "checkpoint_sink": "stdout"}
    with pytest.raises(ConfigError, match=r"audit\.event_position_file"):
        load_settings(None, **base, audit={**audit, "event_sink": "stdout"})
    ok = load_settings(
        None,
        **base,
        audit={**audit, "event_sink": "stdout", "event_position_file": str(tmp_path / "pos")},
    )
    assert ok.audit.event_position_file == tmp_path / "pos"
