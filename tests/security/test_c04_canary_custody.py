"""Attack: a canary secret must appear nowhere: logs, responses, errors, raw database bytes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import grpc
import pytest
from pipsync.vault.v1 import credential_pb2, trading_pb2
from pipsync.vault.v1 import credential_service_pb2 as cpb

from tests.support import pg
from tests.support.canary import find, new_canary
from tests.support.custody import binance_request, creds, make_workspace
from tests.support.errors import call_error
from tests.support.vault import iter_audit, start_vault
from vault_server.observability.logging import configure_logging


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_canary_never_leaves_the_vault(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], backend: str
) -> None:
    configure_logging("DEBUG", "json")
    admin = app_url = None
    if backend == "postgres":
        admin, app_url = pg.provisioned_database()
    vault = start_vault(tmp_path / "home", app_url, log_level="DEBUG")
    canary, canary2, phrase = new_canary(), new_canary(), new_canary()
    seen: list[bytes] = []  # every response and error, serialized
    try:
        make_workspace(vault, "ws-a")
        stub = creds(vault)

        def call(method, request, who: str = "onboarding"):  # type: ignore[no-untyped-def]
            try:
                response = method(request, metadata=vault.md(who), timeout=10)
                seen.append(response.SerializeToString())
                return response
            except grpc.RpcError as exc:
                err = call_error(exc)
                seen.append(f"{err.code} {err.message} {err.reasons} {err.metadata}".encode())
                seen.append(str(exc.trailing_metadata()).encode())
                return None

        cred = call(
            stub.CreateCredential, binance_request("ws-a", "main", "K" * 24, canary)
        ).credential
        okx = call(
            stub.CreateCredential,
            cpb.CreateCredentialRequest(
                parent="workspaces/ws-a", credential_id="okx", broker=trading_pb2.BROKER_OKX,
                environment=trading_pb2.ENVIRONMENT_PAPER, key_algorithm=trading_pb2.KEY_ALGORITHM_HMAC_SHA256,
                material=credential_pb2.SecretMaterial(api_key="okx-key", secret=canary2, passphrase=phrase),
                scopes=["read_only", "trade"], reason="onboard okx",
            ),
        )  # fmt: skip
        assert okx is not None
        # Failing calls that carry the canary.
        for bad in (
            binance_request("ws-a", "main", "K" * 24, canary),  # duplicate
            binance_request("ws-a", "w", "K" * 24, canary, scopes=["enableWithdrawals"]),
            binance_request("ws-a", "x", "", canary),
            binance_request("ws-zz", "y", "K" * 24, canary),
            binance_request("ws-a", "z", "K" * 24, canary, reason=""),
        ):
            assert call(stub.CreateCredential, bad) is None
        call(stub.GetCredential, cpb.GetCredentialRequest(name=cred.name))
        call(stub.ListCredentials, cpb.ListCredentialsRequest(parent="workspaces/ws-a"))
        rotated = call(
            stub.RotateCredential,
            cpb.RotateCredentialRequest(
                name=cred.name, material=credential_pb2.SecretMaterial(api_key="K2" * 12, secret=canary2),
                reason="rotate",
            ),
        )  # fmt: skip
        call(
            stub.RotateCredential,
            cpb.RotateCredentialRequest(
                name=cred.name,
                material=credential_pb2.SecretMaterial(api_key="", secret=canary),
                reason="bad",
            ),
        )
        call(
            stub.PromoteCredentialVersion,
            cpb.PromoteCredentialVersionRequest(name=rotated.version.name, reason="promote"),
        )
        call(
            stub.UpdateCredentialPolicy,
            cpb.UpdateCredentialPolicyRequest(
                name=cred.name,
                policy=credential_pb2.OrderPolicy(allowed_symbols=["LTCBTC"]),
                reason="policy",
            ),
        )
        call(
            stub.AttestCredentialPermissions,
            cpb.AttestCredentialPermissionsRequest(name=cred.name, reason="attest"),
            "security",
        )
        call(
            stub.GenerateCredentialKey,
            cpb.GenerateCredentialKeyRequest(
                parent="workspaces/ws-a",
                credential_id="gen",
                broker=trading_pb2.BROKER_BINANCE_SPOT,
                environment=trading_pb2.ENVIRONMENT_LIVE,
                key_algorithm=trading_pb2.KEY_ALGORITHM_ED25519,
                scopes=["enableSpotAndMarginTrading"],
                reason="gen",
            ),
        )
        call(
            stub.RevokeCredential,
            cpb.RevokeCredentialRequest(name="workspaces/ws-a/credentials/okx", reason="revoke"),
            "security",
        )
        audit_rows = [repr(vars(e)).encode() for e in iter_audit(vault.app)]
        db_bytes = _database_bytes(vault, admin)
    finally:
        vault.stop()
        if admin:
            pg.drop_database(admin)
    out, err = capfd.readouterr()
    assert "CreateCredential" in out + err  # the logs were really captured
    for label, blob in (
        ("responses and errors", b"\n".join(seen)),
        ("audit rows", b"\n".join(audit_rows)),
        ("stdout/stderr", (out + err).encode()),
        ("database", db_bytes),
    ):
        for secret in (canary, canary2, phrase):
            assert find(secret, blob) == [], f"canary found in {label}"
    assert len(db_bytes) > 10_000
    # Positive control: the scanner does find the canary where it really is.
    sent = binance_request("ws-a", "main", "K" * 24, canary).SerializeToString()
    assert find(canary, sent) and find(canary, canary.encode().hex().encode())


def _database_bytes(vault, admin: str | None) -> bytes:  # type: ignore[no-untyped-def]
    if admin is None:
        home = vault.home
        return b"".join(p.read_bytes() for p in sorted(home.glob("vault.db*")))
    dump = subprocess.run(
        ["pg_dump", "--data-only", "--no-owner", admin], capture_output=True, check=True
    )
    return dump.stdout
