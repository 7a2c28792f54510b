"""Fuzz every RPC of pipsync.vault.v1 against a LIVE vault (real gRPC on real sockets).

Requests are built from the service descriptors (``descriptor_strategies``), so every request
message of every RPC is covered, including RPCs added later. A canary secret is onboarded first.
For every call:

- a request over ``limits.max_message_bytes`` is RESOURCE_EXHAUSTED (gRPC refuses it before
  any handler, so that one status carries no ``ErrorInfo``);
- any other failure is a ``google.rpc.Status`` with exactly one ``ErrorInfo`` in our domain whose reason
  is a declared ``ErrorReason`` other than INTERNAL (an unhandled exception is a finding);
- no response, error message, error detail or trailer contains the canary in any encoding;
- a refused call changes no business row (workspaces, credentials, versions, routing contexts,
  signed orders, KEK state): nothing half-written.

After each RPC's examples: the server still answers health, every audit chain verifies, and the
server's log (captured at DEBUG) holds no canary. ``PIPVAULT_FUZZ_EXAMPLES`` (default 12 per RPC)
raises the count for a long run; ``PIPVAULT_FUZZ_BACKEND=postgres`` runs on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pipsync.vault.v1 import (
    audit_service_pb2,
    credential_pb2,
    credential_service_pb2,
    error_reason_pb2,
    key_service_pb2,
    signing_service_pb2,
    signing_service_pb2_grpc,
    trading_pb2,
    workspace_service_pb2,
)
from sqlalchemy import text

from tests.fuzz.descriptor_strategies import request_bytes
from tests.support import pg
from tests.support import signing_flow as sf
from tests.support.canary import find, new_canary
from tests.support.custody import binance_request, make_workspace, onboard
from tests.support.errors import call_error
from tests.support.vault import ROLES, RunningVault, inspect_db, start_vault
from tests.venue_stubs.binance_stub import BinanceStub
from vault_server.observability.logging import configure_logging

MODULES = (
    audit_service_pb2,
    credential_service_pb2,
    key_service_pb2,
    signing_service_pb2,
    workspace_service_pb2,
)
# Calls that can take the canary credential or its workspace out of service run last, so the
# others keep reaching the signing path.
DESTRUCTIVE = (
    "EndRouting", "RevokeCredential", "FreezeWorkspace", "MigrateKeys", "RotateKeyEncryptionKey",
)  # fmt: skip
VENUES = (
    "binance_spot", "binance_usdm", "kraken_spot", "bybit", "okx", "coinbase_advanced", "oanda",
    "alpaca", "ig",
)  # fmt: skip
METHODS: list[MethodDescriptor] = sorted(
    (m for mod in MODULES for svc in mod.DESCRIPTOR.services_by_name.values() for m in svc.methods),
    key=lambda m: m.name in DESTRUCTIVE,
)
DECLARED = {
    v.name.removeprefix("ERROR_REASON_")
    for v in error_reason_pb2.DESCRIPTOR.enum_types_by_name["ErrorReason"].values
} - {"UNSPECIFIED", "INTERNAL"}
DOMAIN = "vault.pipsync.dev"
BUSINESS_TABLES = (
    "workspaces",
    "credentials",
    "credential_versions",
    "routing_contexts",
    "signed_orders",
    "kek_state",
)
EXAMPLES = int(os.environ.get("PIPVAULT_FUZZ_EXAMPLES", "12"))
FUZZER = {"type": "service", "roles": ["security", "onboarding", "auditor", "router"]}


def _message_class(desc: Any) -> Any:
    for mod in MODULES:
        if desc.name in mod.DESCRIPTOR.message_types_by_name:
            return getattr(mod, desc.name)
    raise AssertionError(desc.full_name)


class Live:
    """The running vault, its canaries, the real names to aim at and the captured log."""

    def __init__(
        self, vault: RunningVault, canaries: list[str], names: list[str], bases: dict[str, Any]
    ) -> None:
        self.vault = vault
        self.bases = bases  # a valid request per RPC, for guided mutation
        self.canaries = canaries
        self.names = names
        self.log = io.StringIO()
        self.lock = threading.Lock()
        self.outcomes: Counter[str] = Counter()  # printed per RPC (pytest -s) to show depth

    def scan(self, blob: bytes, where: str) -> None:
        for canary in self.canaries:
            hits = find(canary, blob)
            assert not hits, f"canary leaked in {where}: {hits}"


class _LockedStream:
    def __init__(self, live: Live) -> None:
        self._live = live

    def write(self, text_: str) -> int:
        with self._live.lock:
            return self._live.log.write(text_)

    def flush(self) -> None:
        return None


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    home = tmp_path_factory.mktemp("fuzz") / "home"
    admin = url = None
    if os.environ.get("PIPVAULT_FUZZ_BACKEND") == "postgres":
        admin, url = pg.provisioned_database()
    roles = {**ROLES, "fuzzer": {**FUZZER, "workspaces": ["*"]}}
    venue = BinanceStub({})  # Binance on loopback; every other venue at a closed loopback port
    venue.__enter__()
    urls = dict.fromkeys(VENUES, "http://127.0.0.1:9") | {
        "binance_spot": venue.base_url,
        "binance_usdm": venue.base_url,
    }
    vault = start_vault(
        home, url, roles=roles, log_level="DEBUG", signing={"venue_base_urls": urls}
    )
    try:
        canary = new_canary()
        key = sf.binance_hmac(sf.new_api_key(), canary)
        venue.keys[key.api_key] = canary
        make_workspace(vault, "ws-a")
        make_workspace(vault, "ws-b")
        cred = onboard(vault, "ws-a", "canary", key.api_key, canary)
        victim = onboard(vault, "ws-a", "victim", sf.new_api_key(), canary)
        stub = signing_service_pb2_grpc.SigningServiceStub(vault.channel(vault.socket_target))
        rc = stub.BeginRouting(
            signing_service_pb2.BeginRoutingRequest(
                credential=cred.name, strategy_id="fuzz", reason="fuzz setup"
            ),
            metadata=vault.md("fuzzer"),
            timeout=10,
        ).routing_context
        names = [
            "workspaces/ws-a",
            "workspaces/ws-b",
            "workspaces/ws-missing",
            "ws-a",
            cred.name,
            f"{cred.name}/versions/1",
            f"{cred.name}/versions/2",
            rc.name,
            "workspaces/ws-a/credentials/missing",
            "local",
        ]
        yield Live(vault, [canary], names, _bases(key, cred.name, victim.name, rc.name, canary))
    finally:
        vault.stop()
        venue.__exit__(None, None, None)
        if admin:
            pg.drop_database(admin)


def _bases(key: sf.VenueKey, cred: str, victim: str, rc: str, canary: str) -> dict[str, Any]:
    """One valid request per RPC (by name), the starting point of guided mutation."""
    material = credential_pb2.SecretMaterial(api_key=key.api_key, secret=canary)
    r = "fuzzing"
    cs, ss, ws, ks, au = (
        credential_service_pb2, signing_service_pb2, workspace_service_pb2, key_service_pb2,
        audit_service_pb2,
    )  # fmt: skip
    return {
        "ListAuditEvents": au.ListAuditEventsRequest(filter=au.AuditFilter(workspace="workspaces/ws-a")),
        "StreamAuditEvents": au.StreamAuditEventsRequest(filter=au.AuditFilter(workspace="workspaces/ws-a")),
        "VerifyAuditLog": au.VerifyAuditLogRequest(workspace="workspaces/ws-a"),
        "CreateCredential": binance_request("ws-a", "fz", key.api_key, canary, reason=r),
        "GenerateCredentialKey": cs.GenerateCredentialKeyRequest(
            parent="workspaces/ws-a", credential_id="gen", broker=trading_pb2.BROKER_BINANCE_SPOT,
            environment=trading_pb2.ENVIRONMENT_LIVE, key_algorithm=trading_pb2.KEY_ALGORITHM_ED25519,
            scopes=["enableReading", "enableSpotAndMarginTrading"], reason=r),
        "AttachCredentialApiKey": cs.AttachCredentialApiKeyRequest(
            name="workspaces/ws-a/credentials/gen", api_key=sf.new_api_key(), reason=r),
        "GetCredential": cs.GetCredentialRequest(name=cred),
        "ListCredentials": cs.ListCredentialsRequest(parent="workspaces/ws-a"),
        "RotateCredential": cs.RotateCredentialRequest(name=cred, material=material, reason=r),
        "PromoteCredentialVersion": cs.PromoteCredentialVersionRequest(name=f"{cred}/versions/2", reason=r),
        "RevokeCredential": cs.RevokeCredentialRequest(name=victim, reason=r),
        "AttestCredentialPermissions": cs.AttestCredentialPermissionsRequest(name=victim, reason=r),
        "UpdateCredentialPolicy": cs.UpdateCredentialPolicyRequest(
            name=cred, policy=credential_pb2.OrderPolicy(allowed_symbols=["LTCBTC"]), reason=r),
        "GetKeyStatus": ks.GetKeyStatusRequest(),
        "RotateKeyEncryptionKey": ks.RotateKeyEncryptionKeyRequest(reason=r),
        "MigrateKeys": ks.MigrateKeysRequest(target_provider_id="local", reason=r),
        "BeginRouting": ss.BeginRoutingRequest(credential=cred, strategy_id="fz", reason=r),
        "RenewRouting": ss.RenewRoutingRequest(name=rc, reason=r),
        "EndRouting": ss.EndRoutingRequest(name=rc, reason=r),
        "SignOrder": ss.SignOrderRequest(routing_context=rc, order=sf.place_for(key), reason=r),
        "ExecuteOrder": ss.ExecuteOrderRequest(routing_context=rc, order=sf.place_for(key), reason=r),
        "CreateWorkspace": ws.CreateWorkspaceRequest(workspace_id="ws-fz", reason=r),
        "GetWorkspace": ws.GetWorkspaceRequest(name="workspaces/ws-a"),
        "ListWorkspaces": ws.ListWorkspacesRequest(),
        "FreezeWorkspace": ws.FreezeWorkspaceRequest(name="workspaces/ws-b", reason=r),
        "UnfreezeWorkspace": ws.UnfreezeWorkspaceRequest(name="workspaces/ws-b", reason=r),
    }  # fmt: skip


@pytest.fixture(autouse=True)
def _capture_log(live: Live) -> None:
    # The conftest resets logging after every test; point it at the capture buffer again.
    configure_logging("DEBUG", "json", stream=_LockedStream(live))


def _snapshot(live: Live) -> str:
    """A digest of every business row (not the audit trail, which refusals rightly extend)."""
    db = inspect_db(live.vault.app)
    digest = hashlib.sha256()
    try:
        with db.transaction() as session:
            for table in BUSINESS_TABLES:
                rows = session.execute(text(f"SELECT * FROM {table}")).all()
                for row in sorted(repr(tuple(r)) for r in rows):
                    digest.update(row.encode())
    finally:
        if db is not live.vault.app.db:
            db.dispose()
    return digest.hexdigest()


def _fresh_routing_context(live: Live, rpc: str) -> None:
    stub = signing_service_pb2_grpc.SigningServiceStub(live.vault.channel(live.vault.socket_target))
    request = signing_service_pb2.BeginRoutingRequest(
        credential=live.names[4], strategy_id="fuzz", reason="fuzz: a fresh context"
    )  # names[4] is the canary credential
    try:
        rc = stub.BeginRouting(request, metadata=live.vault.md("fuzzer"), timeout=10)
    except grpc.RpcError:
        return  # earlier examples made the credential unusable: fuzz with the old context
    live.bases[rpc].routing_context = rc.routing_context.name


def _raw(data: bytes) -> bytes:
    return data


def _call(live: Live, method: MethodDescriptor, payload: bytes, who: str, timeout: float | None,
          reason_header: bool) -> tuple[list[bytes], grpc.RpcError | None]:  # fmt: skip
    vault = live.vault
    data_plane = method.containing_service.name == "SigningService"
    channel = vault.channel(vault.socket_target if data_plane else vault.admin_target)
    path = f"/{method.containing_service.full_name}/{method.name}"
    metadata = vault.md(who)
    if reason_header:
        metadata.append(("x-pipvault-reason", "fuzzing"))
    try:
        if not method.server_streaming:
            unary = channel.unary_unary(path, request_serializer=_raw, response_deserializer=_raw)
            return [unary(payload, metadata=metadata, timeout=timeout)], None
        stream = channel.unary_stream(path, request_serializer=_raw, response_deserializer=_raw)
        call = stream(payload, metadata=metadata, timeout=timeout)
        timer = threading.Timer(1.0, call.cancel)  # a follow stream never ends by itself
        timer.start()
        out: list[bytes] = []
        try:
            for item in call:
                out.append(item)
                if len(out) >= 20:
                    call.cancel()
                    break
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                return out, exc
        finally:
            timer.cancel()
        return out, None
    except grpc.RpcError as exc:
        return [], exc


def _reason(exc: grpc.RpcError) -> str:
    reasons = call_error(exc).reasons
    return reasons[0] if len(reasons) == 1 else "-"


def _check_error(live: Live, path: str, exc: grpc.RpcError) -> None:
    trailers = str(exc.trailing_metadata() or "").encode()
    live.scan((exc.details() or "").encode() + trailers, f"{path} error")
    err = call_error(exc)
    assert err.code != grpc.StatusCode.UNKNOWN, f"{path}: UNKNOWN {err.message}"
    assert len(err.reasons) == 1, f"{path}: {err.code} {err.message!r} has {err.reasons}"
    assert err.domains == [DOMAIN], f"{path}: {err.domains}"
    assert err.reason in DECLARED, (
        f"{path}: undeclared or INTERNAL reason {err.reason} ({err.message})"
    )
    for key, value in err.metadata.items():
        live.scan(f"{key}={value}".encode(), f"{path} ErrorInfo metadata")


@pytest.mark.parametrize("method", METHODS, ids=lambda m: f"{m.containing_service.name}.{m.name}")
def test_fuzzed_requests_get_declared_errors_and_leak_nothing(
    live: Live, method: MethodDescriptor
) -> None:
    cls = _message_class(method.input_type)
    path = f"/{method.containing_service.full_name}/{method.name}"

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        derandomize=os.environ.get("PIPVAULT_FUZZ_RANDOM") is None,
    )
    @given(
        payload=request_bytes(cls, live.names, live.bases.get(method.name)),
        who=st.sampled_from(["fuzzer"] * 6 + ["router-b", "security-b", "auditor"]),
        timeout=st.sampled_from([10.0] * 8 + [10.0**7, None]),
        reason_header=st.booleans(),
    )
    def run(payload: bytes, who: str, timeout: float | None, reason_header: bool) -> None:
        before = _snapshot(live)
        responses, exc = _call(live, method, payload, who, timeout, reason_header)
        live.outcomes["OK" if exc is None else f"{exc.code().name}:{_reason(exc)}"] += 1
        for raw in responses:
            live.scan(raw, f"{path} response")
            _message_class(method.output_type).FromString(raw)  # a well-formed response
        if exc is not None and len(payload) > live.vault.app.settings.limits.max_message_bytes:
            # Refused by gRPC itself before any handler runs (no ErrorInfo can be attached there).
            assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, f"{path}: {exc.code()}"
        elif exc is not None:
            _check_error(live, path, exc)
            assert _snapshot(live) == before, f"{path} refused ({call_error(exc).reason}) but wrote"

    if method.name in ("SignOrder", "ExecuteOrder"):
        _fresh_routing_context(live, method.name)  # earlier examples may have shortened or ended it
    live.outcomes.clear()
    run()
    print(f"\n{path}: {dict(live.outcomes.most_common())}")
    # The server is alive, its audit chains verify, and its log is clean.
    health = health_pb2_grpc.HealthStub(live.vault.channel(live.vault.health_target))
    assert health.Check(health_pb2.HealthCheckRequest(), timeout=10).status == 1
    stub = audit_service_pb2
    verify = live.vault.channel().unary_unary(
        "/pipsync.vault.v1.AuditService/VerifyAuditLog",
        request_serializer=stub.VerifyAuditLogRequest.SerializeToString,
        response_deserializer=stub.VerifyAuditLogResponse.FromString,
    )
    for ws in ("ws-a", "ws-b"):
        result = verify(
            stub.VerifyAuditLogRequest(workspace=f"workspaces/{ws}"),
            metadata=live.vault.md("auditor"),
            timeout=30,
        )
        assert result.intact, f"audit chain of {ws} broken after fuzzing {path}: {result}"
    with live.lock:
        live.scan(live.log.getvalue().encode(), "server log")


def test_the_fuzzer_covers_every_rpc() -> None:
    """Descriptor-driven: the parametrisation is exactly the set of RPCs the API declares."""
    declared = {
        f"{s.full_name}/{m.name}"
        for mod in MODULES
        for s in mod.DESCRIPTOR.services_by_name.values()
        for m in s.methods
    }
    assert {f"{m.containing_service.full_name}/{m.name}" for m in METHODS} == declared
    assert len(declared) >= 26
