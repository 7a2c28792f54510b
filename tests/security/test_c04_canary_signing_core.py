"""Attack: a canary secret never appears in signed responses, errors, audit rows or logs."""

from __future__ import annotations

import secrets
from pathlib import Path

import grpc
import pytest
from pipsync.vault.v1 import credential_pb2, trading_pb2
from pipsync.vault.v1 import credential_service_pb2 as cpb
from pipsync.vault.v1 import signing_service_pb2 as spb
from pipsync.vault.v1 import signing_service_pb2_grpc as sgrpc

from tests.support.canary import find, new_canary
from tests.support.custody import creds, make_workspace
from tests.support.errors import call_error
from tests.support.vault import iter_audit, start_vault
from vault_server.observability.logging import configure_logging


def test_signing_never_returns_the_secret(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    configure_logging("DEBUG", "json")
    vault = start_vault(tmp_path / "home", log_level="DEBUG")
    canary, phrase = new_canary(), new_canary()
    seen: list[bytes] = []
    try:
        make_workspace(vault, "ws-a")
        onboard = [
            ("bn", trading_pb2.BROKER_BINANCE_SPOT, ["enableSpotAndMarginTrading"], "LTCBTC", {}),
            ("bb", trading_pb2.BROKER_BYBIT, ["ContractTrade"], "BTCUSDT", {"category": "linear"}),
            ("ok", trading_pb2.BROKER_OKX, ["trade"], "BTC-USDT", {}),
        ]
        stub = sgrpc.SigningServiceStub(vault.channel(vault.socket_target))
        for cred_id, broker, scopes, symbol, extras in onboard:
            material = credential_pb2.SecretMaterial(api_key="key" + secrets.token_hex(8), secret=canary,
                                                     passphrase=phrase if broker == trading_pb2.BROKER_OKX else "")  # fmt: skip
            cred = creds(vault).CreateCredential(
                cpb.CreateCredentialRequest(
                    parent="workspaces/ws-a", credential_id=cred_id, broker=broker,
                    environment=trading_pb2.ENVIRONMENT_TESTNET if broker != trading_pb2.BROKER_BINANCE_SPOT
                    else trading_pb2.ENVIRONMENT_LIVE,
                    key_algorithm=trading_pb2.KEY_ALGORITHM_HMAC_SHA256, material=material, scopes=scopes,
                    reason="onboard",
                ),
                metadata=vault.md("onboarding"), timeout=10,
            ).credential  # fmt: skip
            rc = stub.BeginRouting(spb.BeginRoutingRequest(credential=cred.name, strategy_id="s", reason="r"),
                                   metadata=vault.md("router"), timeout=10).routing_context  # fmt: skip
            for i, rc_name in enumerate((rc.name, rc.name, "", rc.name)):
                order = trading_pb2.Order(
                    operation=trading_pb2.ORDER_OPERATION_PLACE, symbol=symbol, side=trading_pb2.ORDER_SIDE_BUY,
                    type=trading_pb2.ORDER_TYPE_LIMIT, quantity="1", price="10",
                    client_order_id=f"{cred_id}{i % 2}", extras=extras,
                )  # fmt: skip
                try:
                    resp = stub.SignOrder(spb.SignOrderRequest(routing_context=rc_name, order=order, reason="t"),
                                          metadata=vault.md("router"), timeout=10)  # fmt: skip
                    seen.append(resp.SerializeToString())
                except grpc.RpcError as exc:
                    err = call_error(exc)
                    seen.append(f"{err.message}{err.metadata}{exc.trailing_metadata()}".encode())
        audit = b"\n".join(repr(vars(e)).encode() for e in iter_audit(vault.app))
    finally:
        vault.stop()
    out, err_text = capfd.readouterr()
    signed = [s for s in seen if b"https://" in s]
    assert len(seen) == 12 and len(signed) == 6  # two signatures per venue, the rest refused
    for label, blob in (
        ("responses", b"\n".join(seen)),
        ("audit", audit),
        ("logs", (out + err_text).encode()),
    ):
        assert find(canary, blob) == [], f"{label} leaked the secret"
    for label, blob in (("audit", audit), ("logs", (out + err_text).encode())):
        assert find(phrase, blob) == [], f"{label} leaked the OKX passphrase"
    # OKX's protocol sends the passphrase in a header (a documented, warned-about exception):
    # it appears in the OKX signed requests' OK-ACCESS-PASSPHRASE header and nowhere else.
    for blob in seen:
        if phrase.encode() in blob:
            assert b"OK-ACCESS-PASSPHRASE" in blob and b"www.okx.com" in blob
