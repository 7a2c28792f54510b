"""Regression (issue 12): unknown keys in nested config sections and unknown venue names were
silently ignored, and ``pipvault dev`` ignored ``PIPVAULT_LISTEN__*`` although the environment
beats defaults. Now every section refuses unknown keys (naming them) and the precedence
flags > environment > file > mode defaults holds for ``dev`` and ``serve`` (real processes)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.security.regress_processes import (
    PIPVAULT,
    dev_policy,
    env_without_pipvault,
    free_port,
    running,
    serving,
    wait_serving,
)
from vault_server.config import ConfigError, load_settings

SECTIONS = ["listen", "limits", "keys", "signing", "audit", "paging", "tls", "identity"]


@pytest.mark.parametrize("section", SECTIONS)
def test_every_section_refuses_an_unknown_key(section: str, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"mode: dev\n{section}:\n  not_a_setting: 1\n")
    with pytest.raises(ConfigError, match=rf"{section}\.not_a_setting: unknown setting"):
        load_settings(cfg)


def test_unknown_venue_and_nested_env_keys_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"signing\.venue_base_urls: .*unknown venue binanse"):
        load_settings(None, mode="dev", signing={"venue_base_urls": {"binanse": "http://x"}})
    assert load_settings(
        None, mode="dev", signing={"venue_base_urls": {"binance_spot": "http://127.0.0.1:1"}}
    ).signing.venue_base_urls == {"binance_spot": "http://127.0.0.1:1"}
    monkeypatch.setenv("PIPVAULT_LISTEN__ADMIN_ADRESS", "127.0.0.1:1")
    with pytest.raises(ConfigError, match="PIPVAULT_LISTEN__ADMIN_ADRESS: not a setting"):
        load_settings(None, mode="dev")
    monkeypatch.delenv("PIPVAULT_LISTEN__ADMIN_ADRESS")
    monkeypatch.setenv("PIPVAULT_SIGNNG__COINBASE_STRICT", "true")
    with pytest.raises(ConfigError, match="PIPVAULT_SIGNNG__COINBASE_STRICT: not a setting"):
        load_settings(None, mode="dev")
    # Plain PIPVAULT_* names are shared with the client and with secrets read by name.
    monkeypatch.delenv("PIPVAULT_SIGNNG__COINBASE_STRICT")
    monkeypatch.setenv("PIPVAULT_ADDR", "127.0.0.1:8201")
    assert load_settings(None, mode="dev").mode == "dev"


def test_serve_refuses_a_misspelt_nested_key_naming_it(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"mode: dev\nhome: {tmp_path / 'home'}\npolicy_file: {dev_policy(tmp_path / 'p.yaml')}\n"
        "signing:\n  coinbase_strikt: true\n"
    )
    result = subprocess.run(
        [*PIPVAULT, "serve", "--config", str(cfg)],
        capture_output=True, text=True, timeout=60, env=env_without_pipvault(),
    )  # fmt: skip
    assert result.returncode == 2
    assert "signing.coinbase_strikt: unknown setting" in result.stderr
    assert not (tmp_path / "home").exists()  # refused before anything was created


def test_dev_precedence_flags_env_file_defaults(tmp_path: Path) -> None:
    port = {n: free_port() for n in ("flag_admin", "env_admin", "env_data", "file_data", "health")}
    cfg = tmp_path / "dev.yaml"
    cfg.write_text(
        f"listen:\n  data_address: 127.0.0.1:{port['file_data']}\n  metrics_address: null\n"
    )
    env = env_without_pipvault(
        PIPVAULT_LISTEN__ADMIN_ADDRESS=f"127.0.0.1:{port['env_admin']}",  # beaten by the flag
        PIPVAULT_LISTEN__DATA_ADDRESS=f"127.0.0.1:{port['env_data']}",  # beats the file
        PIPVAULT_LISTEN__HEALTH_ADDRESS=f"127.0.0.1:{port['health']}",  # beats the dev default
    )
    args = ["dev", "--home", str(tmp_path / "home"), "--config", str(cfg),
            "--admin-address", f"127.0.0.1:{port['flag_admin']}"]  # fmt: skip
    with running(args, env) as proc:
        wait_serving(f"127.0.0.1:{port['health']}", proc)
        assert serving(f"127.0.0.1:{port['flag_admin']}")
        assert serving(f"127.0.0.1:{port['env_data']}")
        assert not serving(f"127.0.0.1:{port['env_admin']}")
        assert not serving(f"127.0.0.1:{port['file_data']}")


def test_serve_precedence_env_beats_file(tmp_path: Path) -> None:
    file_health, env_health = free_port(), free_port()
    cfg = tmp_path / "serve.yaml"
    cfg.write_text(
        f"mode: dev\nhome: {tmp_path / 'home'}\npolicy_file: {dev_policy(tmp_path / 'p.yaml')}\n"
        f"listen:\n  admin_address: 127.0.0.1:0\n  health_address: 127.0.0.1:{file_health}\n"
        "  metrics_address: null\n"
    )
    env = env_without_pipvault(PIPVAULT_LISTEN__HEALTH_ADDRESS=f"127.0.0.1:{env_health}")
    with running(["serve", "--config", str(cfg)], env) as proc:
        wait_serving(f"127.0.0.1:{env_health}", proc)
        assert not serving(f"127.0.0.1:{file_health}")
