"""Regression (issue 19 section 7.1, logs): at ``log_level: DEBUG`` the HTTP client's own log
line for the response headers (httpcore's ``receive_response_headers.complete``) printed them
unredacted, so a venue echoing the bearer token put it in the vault's log. A real ``pipvault
dev`` process, logging at DEBUG, proxies an order to an OANDA stub that echoes the token in a
header and the body; its whole output must hold no form of the run-time canary, while still
holding httpcore's DEBUG lines (so the test sees the lines that used to leak)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.hot_path.procs import ProcVault, ServerProcess
from tests.support import signing_flow as sf
from tests.support.canary import find, new_canary
from tests.venue_stubs.oanda_stub import OandaStub


@pytest.mark.timeout(120)
def test_debug_logs_of_a_server_process_hold_no_echoed_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = sf.oanda(new_canary())
    with OandaStub({key.secret_text: [sf.OANDA_ACCOUNT]}) as stub:
        stub.echo_headers = ("authorization",)
        monkeypatch.setenv("PIPVAULT_LOG_LEVEL", "DEBUG")
        monkeypatch.setenv(
            "PIPVAULT_SIGNING__VENUE_BASE_URLS", json.dumps({"oanda": stub.base_url})
        )
        home = tmp_path / "home"
        home.mkdir(mode=0o700)
        server = ServerProcess(home, None).start()
        vault = ProcVault(server)
        try:
            cred = sf.onboard(vault, key, "oa", ws="demo")  # type: ignore[arg-type]
            rc = sf.begin(vault, cred.name).name  # type: ignore[arg-type]
            done = sf.execute(vault, rc, sf.place_for(key))  # type: ignore[arg-type]
            assert done.http_status == 201 and done.redacted, done.body
            assert stub.requests[-1].headers["authorization"] == f"Bearer {key.secret_text}"
        finally:
            vault.close()
            server.stop()
    logs = (tmp_path / "home.log").read_bytes()
    assert b"receive_response_headers.complete" in logs  # httpcore at DEBUG, as it was
    assert find(key.secret_text, logs) == [], "the vault's log holds the echoed token"
