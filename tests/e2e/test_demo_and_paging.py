"""`pipvault demo --json` as a process, and paging through a fully wired vault."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pipsync.vault.v1 import signing_service_pb2 as spb
from pipsync.vault.v1 import signing_service_pb2_grpc as sgrpc
from pipsync.vault.v1 import trading_pb2

from tests.support.canary import find, new_canary
from tests.support.custody import make_workspace, onboard
from tests.support.errors import expect_error
from tests.support.vault import start_vault

DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"  # Binance docs §1.3


def test_demo_json_signs_the_documentation_order(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vault_server.cli.main", "demo", "--json", "--home", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    req = doc["signed_request"]
    assert set(req) >= {"method", "url", "headers", "body"}
    assert req["method"] == "POST" and req["url"].startswith(
        "https://api.binance.com/api/v3/order?"
    )
    payload, _, signature = req["url"].split("?", 1)[1].rpartition("&signature=")
    assert payload.startswith(
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&"
    )
    assert signature == hmac.new(DOC_SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
    assert doc["withdrawal_scope_refused"].endswith("WITHDRAWAL_SCOPE_REJECTED")
    assert doc["audit_verified"] is True and doc["audit_events"] >= 4
    assert DOC_SECRET not in result.stdout


@pytest.mark.parametrize("broker", ["ig", "ctrader"])
def test_demo_broker_runs_a_platforms_session_flow_against_its_stub(
    tmp_path: Path, broker: str
) -> None:
    """``pipvault demo --broker``: onboarding, an order with SL/TP, amend, close, one login."""
    result = subprocess.run(
        [sys.executable, "-m", "vault_server.cli.main", "demo", "--broker", broker, "--json",
         "--home", str(tmp_path / "demo")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["http"] == [200, 200, 200] and doc["logins"] == 1
    assert doc["session_state"] == "ACTIVE" and doc["audit_verified"] is True
    refused = subprocess.run(
        [sys.executable, "-m", "vault_server.cli.main", "demo", "--broker", "binance"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode != 0 and "no venue session" in refused.stderr


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        type(self).received.append({"path": self.path, "body": json.loads(body)})
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_ten_reads_outside_a_context_page_exactly_once(tmp_path: Path) -> None:
    _Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    vault = start_vault(
        tmp_path / "home", paging={"kind": "webhook", "url": url, "sender_interval_s": 0.1}
    )
    try:
        make_workspace(vault, "ws-a")
        canary = new_canary()
        cred = onboard(vault, "ws-a", "c1", "K" * 24, canary)
        stub = sgrpc.SigningServiceStub(vault.channel(vault.socket_target))
        order = trading_pb2.Order(operation=trading_pb2.ORDER_OPERATION_QUERY_ACCOUNT)
        for _ in range(10):
            err = expect_error(stub.SignOrder, spb.SignOrderRequest(credential=cred.name, order=order, reason="probe"),
                               metadata=vault.md("router"), timeout=10)  # fmt: skip
            assert err.reason == "ROUTING_CONTEXT_REQUIRED"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _Receiver.received:
            time.sleep(0.1)
        time.sleep(1.0)  # give any duplicate a chance to arrive
        assert len(_Receiver.received) == 1
        page = _Receiver.received[0]["body"]
        text = json.dumps(page)
        assert "ws-a" in text and cred.name in text and find(canary, text.encode()) == []
    finally:
        vault.stop()
        server.shutdown()
