"""``pipvault demo``: a self-contained signing flow against an in-process dev-mode vault.

It starts a dev vault on loopback ports and the pod-local Unix socket, then, through the real
gRPC API: creates workspace ``demo``; shows a withdrawal-scoped credential refused; onboards a
Binance Spot HMAC credential with Binance's *published documentation example* key pair (never a
real key); opens a routing context; signs the documentation's example order (LTCBTC BUY LIMIT
GTC quantity 1 price 0.1); shows signing without a context refused; verifies the audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from pipsync.vault.v1 import (
    audit_service_pb2,
    audit_service_pb2_grpc,
    credential_pb2,
    credential_service_pb2,
    credential_service_pb2_grpc,
    signing_service_pb2,
    signing_service_pb2_grpc,
    trading_pb2,
    workspace_service_pb2,
    workspace_service_pb2_grpc,
)

# Binance Spot API docs, "SIGNED endpoint examples" (reference broker-signing.md §1.3): public
# documentation values, used so the demo's signature can be checked against the docs.
DOC_API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


if TYPE_CHECKING:
    from vault_server.app import VaultApp


def _reason(err: grpc.RpcError) -> str:
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    for detail in status.details if status else []:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return f"{err.code().name} {info.reason}"
    return err.code().name


def run_flow(
    admin: grpc.Channel, data: grpc.Channel, tokens: dict[str, str], say: Any
) -> dict[str, Any]:
    def md(who: str, reason: str = "") -> tuple[tuple[str, str | bytes], ...]:
        out: list[tuple[str, str | bytes]] = [("authorization", f"Bearer {tokens[who]}")]
        return tuple(out + ([("x-pipvault-reason", reason)] if reason else []))

    ws = workspace_service_pb2_grpc.WorkspaceServiceStub(admin)
    creds = credential_service_pb2_grpc.CredentialServiceStub(admin)
    signing = signing_service_pb2_grpc.SigningServiceStub(data)
    audit = audit_service_pb2_grpc.AuditServiceStub(admin)

    try:
        ws.CreateWorkspace(
            workspace_service_pb2.CreateWorkspaceRequest(workspace_id="demo", reason="demo"),
            metadata=md("dev-security"), timeout=10,
        )  # fmt: skip
        say("1. created workspace demo")
    except grpc.RpcError as err:
        if err.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise
        say("1. workspace demo already exists")

    def create(cred_id: str, scopes: list[str]) -> Any:
        return creds.CreateCredential(
            credential_service_pb2.CreateCredentialRequest(
                parent="workspaces/demo", credential_id=cred_id, display_name="Binance doc key",
                broker=trading_pb2.BROKER_BINANCE_SPOT, environment=trading_pb2.ENVIRONMENT_LIVE,
                key_algorithm=trading_pb2.KEY_ALGORITHM_HMAC_SHA256,
                material=credential_pb2.SecretMaterial(api_key=DOC_API_KEY, secret=DOC_SECRET),
                scopes=scopes, reason="demo onboarding",
            ),
            metadata=md("dev-onboarding"), timeout=10,
        )  # fmt: skip

    try:
        create("withdrawer", ["read", "trade", "Enable Withdrawals"])
        raise RuntimeError("a withdrawal scope was accepted")
    except grpc.RpcError as err:
        refused = _reason(err)
        say(f"2. withdrawal-scoped credential refused: {refused}")
    cred_id = "binance-doc"
    try:
        created = create(cred_id, ["enableReading", "enableSpotAndMarginTrading"]).credential
    except grpc.RpcError as err:
        if err.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise
        created = creds.GetCredential(
            credential_service_pb2.GetCredentialRequest(name=f"workspaces/demo/credentials/{cred_id}"),
            metadata=md("dev-onboarding"), timeout=10,
        ).credential  # fmt: skip
    say(f"3. onboarded {created.name} (key {created.api_key_hint}); the response holds no secret")

    rc = signing.BeginRouting(
        signing_service_pb2.BeginRoutingRequest(
            credential=created.name, strategy_id="demo-strategy", reason="demo routing"
        ),
        metadata=md("dev-router"), timeout=10,
    ).routing_context  # fmt: skip
    say(f"4. routing context {rc.name} open until {rc.expire_time.ToJsonString()}")

    order = trading_pb2.Order(
        operation=trading_pb2.ORDER_OPERATION_PLACE, symbol="LTCBTC",
        side=trading_pb2.ORDER_SIDE_BUY, type=trading_pb2.ORDER_TYPE_LIMIT,
        time_in_force=trading_pb2.TIME_IN_FORCE_GTC, quantity="1", price="0.1",
        client_order_id=f"demo-{rc.name.rsplit('-', 1)[-1][:12]}",
    )  # fmt: skip
    signed = signing.SignOrder(
        signing_service_pb2.SignOrderRequest(
            routing_context=rc.name, order=order, reason="demo order"
        ),
        metadata=md("dev-router"), timeout=10,
    )  # fmt: skip
    req = signed.signed_request
    say(f"5. signed: {req.method} {req.url}")
    say(f"   valid until {req.expire_time.ToJsonString()}; audit event {signed.audit_event}")

    try:
        signing.SignOrder(
            signing_service_pb2.SignOrderRequest(
                credential=created.name, order=order, reason="demo: no context"
            ),
            metadata=md("dev-router"), timeout=10,
        )  # fmt: skip
        raise RuntimeError("signing without a routing context succeeded")
    except grpc.RpcError as err:
        say(f"6. signing without a routing context refused: {_reason(err)}")

    verify = audit.VerifyAuditLog(
        audit_service_pb2.VerifyAuditLogRequest(workspace="workspaces/demo"),
        metadata=md("dev-auditor"), timeout=30,
    )  # fmt: skip
    say(f"7. audit log verified: intact={verify.intact}, {verify.events_checked} events checked")
    return {
        "workspace": "workspaces/demo",
        "credential": created.name,
        "withdrawal_scope_refused": refused,
        "routing_context": rc.name,
        "signed_request": {
            "method": req.method,
            "url": req.url,
            "headers": {h.name: h.value for h in req.headers},
            "body": req.body.decode(),
            "expire_time": req.expire_time.ToJsonString(),
        },
        "kek_reference": created.versions[0].kek_reference if created.versions else "",
        "audit_verified": bool(verify.intact),
        "audit_events": int(verify.events_checked),
    }


def demo(home: Path | None, as_json: bool, kms: str = "local") -> int:
    from vault_server.cli.dev_openbao import start_dev_openbao

    with tempfile.TemporaryDirectory(prefix="pipvault-demo-") as tmp:
        base = (home or Path(tmp)).resolve()
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        bao = start_dev_openbao(base, persistent=home is not None) if kms == "openbao" else None
        try:
            keys: dict[str, Any] = bao.keys_settings(base) if bao is not None else {}
            result = _demo_in(base, as_json, keys)
        finally:
            if bao is not None:
                bao.stop()
    if as_json:
        print(json.dumps(result, indent=2))
    return 0 if result["audit_verified"] else 1


@contextlib.contextmanager
def demo_vault(
    base: Path, keys: dict[str, Any] | None = None, **settings: Any
) -> Iterator[tuple[grpc.Channel, grpc.Channel, dict[str, str], VaultApp]]:
    """An in-process dev vault on loopback (admin TCP, data Unix socket): its channels, the dev
    tokens and the app, stopped on exit."""
    from vault_server.app import VaultApp
    from vault_server.cli.dev import ensure_dev_policy
    from vault_server.config import load_settings

    policy_file, tokens = ensure_dev_policy(base)
    loaded = load_settings(
        None, mode="dev", home=str(base), policy_file=str(policy_file), log_level="ERROR",
        **({"keys": keys} if keys else {}), **settings,
        listen={
            "data_socket": str(base / "demo.sock"), "data_address": None,
            "admin_address": "127.0.0.1:0", "health_address": None, "metrics_address": None,
        },
    )  # fmt: skip
    app = VaultApp(loaded)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        bound = asyncio.run_coroutine_threadsafe(app.start(), loop).result(60)
        with (
            grpc.insecure_channel(f"127.0.0.1:{bound.admin_port}") as admin,
            grpc.insecure_channel(f"unix:{bound.data_socket}") as data,
        ):
            yield admin, data, tokens, app
    finally:
        asyncio.run_coroutine_threadsafe(app.stop(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def _demo_in(base: Path, as_json: bool, keys: dict[str, Any]) -> dict[str, Any]:
    lines: list[str] = []
    say = lines.append if as_json else print
    with demo_vault(base, keys) as (admin, data, tokens, app):
        result = run_flow(admin, data, tokens, say)
        primary = app.keys.provider()
        result["kms_provider"] = {
            "id": primary.provider_id,
            "kind": primary.kind,
            "uri": app.settings.resolved_key_providers()[primary.provider_id],
        }
    return result
