"""Housekeeping of the signing path: replay claims are pruned once no rule can need them,
refusals record which rule refused, and a proxied order whose venue never answers is recorded."""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path

from pipsync.vault.v1 import credential_pb2, trading_pb2
from pipsync.vault.v1 import credential_service_pb2 as cpb
from pipsync.vault.v1 import signing_service_pb2 as spb
from pipsync.vault.v1 import signing_service_pb2_grpc as sgrpc
from sqlalchemy import func, select

from tests.support.custody import creds, make_workspace
from tests.support.errors import expect_error
from tests.support.vault import RunningVault, inspect_db, iter_audit, start_vault
from vault_server.storage.models import SignedOrder


def _claims(vault: RunningVault) -> int:
    db = inspect_db(vault.app)
    with db.engine.connect() as conn:
        return int(
            conn.execute(select(func.count()).select_from(SignedOrder.__table__)).scalar_one()
        )


class _Later:
    def __init__(self, when: dt.datetime) -> None:
        self._when = when

    def now(self) -> dt.datetime:
        return self._when

    def monotonic(self) -> float:
        return 0.0


def test_claims_pruned_rules_recorded_and_venue_failures_audited(tmp_path: Path) -> None:
    # An unreachable venue (nothing listens on this loopback port).
    vault = start_vault(
        tmp_path / "home", signing={"venue_base_urls": {"oanda": "http://127.0.0.1:9"}}
    )
    try:
        make_workspace(vault, "ws-a")
        admin = creds(vault)
        cred = admin.CreateCredential(
            cpb.CreateCredentialRequest(
                parent="workspaces/ws-a", credential_id="bn", broker=trading_pb2.BROKER_BINANCE_SPOT,
                environment=trading_pb2.ENVIRONMENT_LIVE, key_algorithm=trading_pb2.KEY_ALGORITHM_HMAC_SHA256,
                material=credential_pb2.SecretMaterial(api_key="K" * 20, secret=secrets.token_hex(20)),
                scopes=["enableSpotAndMarginTrading"], reason="onboard",
                policy=credential_pb2.OrderPolicy(allowed_symbols=["LTCBTC"]),
            ),
            metadata=vault.md("onboarding"), timeout=10,
        ).credential  # fmt: skip
        stub = sgrpc.SigningServiceStub(vault.channel(vault.socket_target))
        rc = stub.BeginRouting(spb.BeginRoutingRequest(credential=cred.name, strategy_id="s", reason="r"),
                               metadata=vault.md("router"), timeout=10).routing_context  # fmt: skip

        def order(symbol: str, coid: str) -> trading_pb2.Order:
            return trading_pb2.Order(
                operation=trading_pb2.ORDER_OPERATION_PLACE, symbol=symbol, side=trading_pb2.ORDER_SIDE_BUY,
                type=trading_pb2.ORDER_TYPE_LIMIT, quantity="1", price="0.1", client_order_id=coid,
            )  # fmt: skip

        for i in range(3):
            stub.SignOrder(spb.SignOrderRequest(routing_context=rc.name, order=order("LTCBTC", f"c{i}"), reason="r"),
                           metadata=vault.md("router"), timeout=10)  # fmt: skip
        expect_error(stub.SignOrder, spb.SignOrderRequest(routing_context=rc.name, order=order("ETHBTC", "x1"), reason="r"),
                     metadata=vault.md("router"), timeout=10)  # fmt: skip
        refusal = [e for e in iter_audit(vault.app) if e.error_reason == "ORDER_POLICY_VIOLATION"][
            -1
        ]
        assert refusal.details["rule"] == "allowed_symbols"
        assert _claims(vault) == 3
        vault.app.lifecycle.destroy_expired()
        assert _claims(vault) == 3  # still inside every window
        vault.app.lifecycle._clock = _Later(dt.datetime.now(dt.UTC) + dt.timedelta(days=2))
        vault.app.lifecycle.destroy_expired()
        assert _claims(vault) == 0

        oanda = admin.CreateCredential(
            cpb.CreateCredentialRequest(
                parent="workspaces/ws-a", credential_id="oa", broker=trading_pb2.BROKER_OANDA,
                environment=trading_pb2.ENVIRONMENT_PAPER, key_algorithm=trading_pb2.KEY_ALGORITHM_BEARER,
                material=credential_pb2.SecretMaterial(secret=secrets.token_hex(32), account_id="101-004-1234567-001"),
                scopes=["trade"], acknowledge_single_permission_tier=True, reason="onboard",
            ),
            metadata=vault.md("onboarding"), timeout=10,
        ).credential  # fmt: skip
        rc2 = stub.BeginRouting(spb.BeginRoutingRequest(credential=oanda.name, strategy_id="s", reason="r"),
                                metadata=vault.md("router"), timeout=10).routing_context  # fmt: skip
        err = expect_error(stub.ExecuteOrder, spb.ExecuteOrderRequest(routing_context=rc2.name, order=order("EUR_USD", "o1"), reason="r"),
                           metadata=vault.md("router"), timeout=10)  # fmt: skip
        assert err.reason == "VENUE_UNAVAILABLE"
        events = [e for e in iter_audit(vault.app) if e.credential == oanda.name]
        assert [(e.action, e.outcome) for e in events][-2:] == [
            ("credential.use", "success"),
            ("credential.use_result", "failed"),
        ]
        assert events[-1].details["useEvent"].startswith("workspaces/ws-a/auditEvents/")
    finally:
        vault.stop()
