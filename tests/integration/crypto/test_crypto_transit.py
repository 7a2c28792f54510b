"""TransitKeyProvider against a real OpenBao: wrap, unwrap, rewrap, rotate, status, retire, AAD
binding, error mapping, authentication (token renewal, AppRole, Kubernetes), timeouts."""

from __future__ import annotations

import datetime as dt
import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.crypto.openbao import OpenBao, start_openbao, transit_policy
from vault_server.core.clock import FixedClock
from vault_server.core.errors import (
    IntegrityCheckFailed,
    InvalidArgument,
    KeyProviderUnavailable,
)
from vault_server.core.secret import Secret
from vault_server.crypto.providers import KekState, new_key_provider
from vault_server.crypto.providers.base import KeyProvider, WrappedDek

pytestmark = pytest.mark.openbao

DEK = Secret(bytes(range(32)))
AAD = b"PVE\x01wrap-binding"


def provider(openbao: OpenBao, key: str, **options: Any) -> KeyProvider:
    options.setdefault("token", openbao.root_token)
    options.setdefault("timeout", 5.0)
    return new_key_provider(
        f"vault-transit://transit/keys/{key}", "transit", address=openbao.address, **options
    )


def least_privilege_token(openbao: OpenBao, key: str, **token_args: Any) -> str:
    return openbao.create_token(f"pv-{key}", transit_policy("transit", key), **token_args)


def test_wrap_unwrap_with_least_privilege(openbao: OpenBao, transit_key: str) -> None:
    kms = provider(openbao, transit_key, token=least_privilege_token(openbao, transit_key))
    wrapped = kms.wrap(DEK, AAD)
    assert wrapped.provider_id == "transit"
    assert wrapped.kek_version == 1
    assert wrapped.blob.startswith(b"vault:v1:")
    assert DEK.reveal() not in wrapped.blob
    assert kms.unwrap(wrapped, AAD) == DEK


def test_aad_is_bound(openbao: OpenBao, transit_key: str) -> None:
    kms = provider(openbao, transit_key)
    wrapped = kms.wrap(DEK, AAD)
    for other in (AAD + b"x", b"", AAD[:-1]):
        with pytest.raises(IntegrityCheckFailed):
            kms.unwrap(wrapped, other)
        with pytest.raises(IntegrityCheckFailed):
            kms.rewrap(wrapped, other)


def test_tampered_wrapped_keys_fail(openbao: OpenBao, transit_key: str) -> None:
    kms = provider(openbao, transit_key)
    wrapped = kms.wrap(DEK, AAD)
    text = wrapped.blob.decode()
    body = text.rsplit(":", 1)[1]
    swapped = ("B" if body[5] == "A" else "A").encode()
    tampered = [
        WrappedDek("transit", 1, wrapped.blob[:14] + swapped + wrapped.blob[15:]),
        WrappedDek("transit", 1, wrapped.blob[:-4]),
        WrappedDek("transit", 2, wrapped.blob),  # header says v2, ciphertext says v1
        WrappedDek("other", 1, wrapped.blob),
        WrappedDek("transit", 1, b"vault:v1:!!!"),
        WrappedDek("transit", 1, b"\xff\xfe"),
    ]
    for bad in tampered:
        with pytest.raises(IntegrityCheckFailed):
            kms.unwrap(bad, AAD)


def test_rotate_rewrap_status_retire(openbao: OpenBao, transit_key: str) -> None:
    kms = provider(openbao, transit_key, token=least_privilege_token(openbao, transit_key))
    assert kms.active_version() == 1
    old = kms.wrap(DEK, AAD)
    assert kms.rotate() == 2
    assert kms.active_version() == 2
    new = kms.wrap(DEK, AAD)
    assert new.kek_version == 2
    moved = kms.rewrap(old, AAD)
    assert moved.kek_version == 2
    assert moved.blob.startswith(b"vault:v2:")
    assert kms.unwrap(old, AAD) == DEK
    assert kms.unwrap(moved, AAD) == DEK
    assert kms.rotate() == 3

    status = kms.status()
    assert status.kind == "vault-transit"
    assert status.active_version == 3
    assert [(v.version, v.state) for v in status.versions] == [
        (3, KekState.ACTIVE),
        (2, KekState.DECRYPT_ONLY),
        (1, KekState.DECRYPT_ONLY),
    ]
    assert all(v.create_time is not None for v in status.versions)

    with pytest.raises(InvalidArgument):
        kms.retire(3)  # active
    with pytest.raises(InvalidArgument):
        kms.retire(2)  # out of order: transit retires oldest first
    with pytest.raises(InvalidArgument):
        kms.retire(9)
    kms.retire(1)
    kms.retire(1)  # idempotent
    assert [v.state for v in kms.status().versions] == [
        KekState.ACTIVE,
        KekState.DECRYPT_ONLY,
        KekState.RETIRED,
    ]
    with pytest.raises(IntegrityCheckFailed):
        kms.unwrap(old, AAD)
    assert kms.unwrap(moved, AAD) == DEK


def test_non_derived_key_is_refused(openbao: OpenBao) -> None:
    """OpenBao silently ignores `context` on a non-derived key, so the AAD would not be bound."""
    name = f"plain-{secrets.token_hex(4)}"
    openbao.create_transit_key(name, derived=False)
    kms = provider(openbao, name)
    with pytest.raises(KeyProviderUnavailable) as info:
        kms.wrap(DEK, AAD)
    assert info.value.metadata["cause"] == "misconfigured"
    assert "derived=true" in info.value.message


def test_missing_key_is_not_created(openbao: OpenBao) -> None:
    name = f"absent-{secrets.token_hex(4)}"
    kms = provider(openbao, name)
    with pytest.raises(KeyProviderUnavailable) as info:
        kms.wrap(DEK, AAD)
    assert info.value.metadata == {"providerId": "transit", "cause": "not_found"}
    import hvac

    with pytest.raises(hvac.exceptions.InvalidPath):  # wrap did not upsert a key
        openbao.client().secrets.transit.read_key(name)


def test_bad_token_is_unavailable_without_detail(openbao: OpenBao, transit_key: str) -> None:
    kms = provider(openbao, transit_key, token="s.not-a-real-token")
    with pytest.raises(KeyProviderUnavailable) as info:
        kms.wrap(DEK, AAD)
    assert info.value.metadata["cause"] == "permission_denied"
    assert "not-a-real-token" not in str(info.value)
    assert info.value.__cause__ is None


def test_token_without_rotate_permission(openbao: OpenBao, transit_key: str) -> None:
    policy = f'path "transit/keys/{transit_key}" {{ capabilities = ["read"] }}'
    token = openbao.create_token(f"ro-{transit_key}", policy)
    kms = provider(openbao, transit_key, token=token)
    with pytest.raises(KeyProviderUnavailable) as info:
        kms.rotate()
    assert info.value.metadata["cause"] == "permission_denied"


def test_renewable_token_is_renewed(openbao: OpenBao, transit_key: str) -> None:
    token = least_privilege_token(openbao, transit_key, ttl="120s", renewable=True)
    accessor = openbao.client(token).auth.token.lookup_self()["data"]["accessor"]
    clock = FixedClock(dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
    kms = provider(openbao, transit_key, token=token, clock=clock)
    root = openbao.client()

    def last_renewal() -> Any:
        return root.auth.token.lookup_accessor(accessor)["data"].get("last_renewal_time")

    kms.unwrap(kms.wrap(DEK, AAD), AAD)
    assert not last_renewal()
    clock.advance(59)  # under half the TTL: no renewal yet
    kms.wrap(DEK, AAD)
    assert not last_renewal()
    clock.advance(2)
    kms.wrap(DEK, AAD)
    assert last_renewal()


def test_approle_login_and_relogin(openbao: OpenBao, transit_key: str) -> None:
    root = openbao.client()
    mount = f"approle-{transit_key}"
    root.sys.enable_auth_method("approle", path=mount)
    root.sys.create_or_update_policy(f"ar-{transit_key}", transit_policy("transit", transit_key))
    root.auth.approle.create_or_update_approle(
        "pipvault", token_policies=[f"ar-{transit_key}"], token_ttl="10m", mount_point=mount
    )
    role_id = root.auth.approle.read_role_id("pipvault", mount_point=mount)["data"]["role_id"]
    secret_id = root.auth.approle.generate_secret_id("pipvault", mount_point=mount)["data"][
        "secret_id"
    ]
    kms = provider(
        openbao, transit_key, token=None, role_id=role_id, secret_id=secret_id, approle_mount=mount
    )
    wrapped = kms.wrap(DEK, AAD)
    # Revoke every token the AppRole issued: the provider must log in again on its own.
    for accessor in root.auth.token.list_accessors()["data"]["keys"]:
        info = root.auth.token.lookup_accessor(accessor)["data"]
        if info.get("path", "").startswith(f"auth/{mount}/"):
            root.auth.token.revoke_accessor(accessor)
    assert kms.unwrap(wrapped, AAD) == DEK

    wrong = provider(
        openbao, transit_key, token=None, role_id=role_id, secret_id="wrong", approle_mount=mount
    )
    with pytest.raises(KeyProviderUnavailable) as err:
        wrong.wrap(DEK, AAD)
    assert "wrong" not in str(err.value)


def self_signed_ca_pem() -> str:
    """A throwaway CA certificate for the Kubernetes auth config (generated, never stored)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-k8s-ca")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_kubernetes_login_failure_is_unavailable(
    openbao: OpenBao, transit_key: str, tmp_path: Path
) -> None:
    root = openbao.client()
    mount = f"k8s-{transit_key}"
    root.sys.enable_auth_method("kubernetes", path=mount)
    root.auth.kubernetes.configure(
        kubernetes_host="https://127.0.0.1:1",
        kubernetes_ca_cert=self_signed_ca_pem(),
        disable_local_ca_jwt=True,
        mount_point=mount,
    )
    root.auth.kubernetes.create_role(
        "pipvault",
        bound_service_account_names=["pipvault"],
        bound_service_account_namespaces=["default"],
        mount_point=mount,
    )
    jwt = tmp_path / "token"
    jwt.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")
    kms = provider(
        openbao,
        transit_key,
        token=None,
        kubernetes_role="pipvault",
        kubernetes_jwt_path=str(jwt),
        kubernetes_mount=mount,
        timeout=2.0,
    )
    with pytest.raises(KeyProviderUnavailable) as login:
        kms.wrap(DEK, AAD)
    assert login.value.metadata["cause"] in {"authentication", "permission_denied"}
    missing = provider(
        openbao,
        transit_key,
        token=None,
        kubernetes_role="pipvault",
        kubernetes_jwt_path=str(tmp_path / "absent"),
        kubernetes_mount=mount,
    )
    with pytest.raises(KeyProviderUnavailable) as info:
        missing.wrap(DEK, AAD)
    assert "kubernetes_jwt_path" in info.value.message


def test_concurrent_use(openbao: OpenBao, transit_key: str) -> None:
    kms = provider(openbao, transit_key, token=least_privilege_token(openbao, transit_key))
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                assert kms.unwrap(kms.wrap(DEK, AAD), AAD) == DEK
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors


# --- availability ---------------------------------------------------------------------------------
def test_stopped_server_is_unavailable_within_the_timeout(own_openbao: OpenBao) -> None:
    own_openbao.create_transit_key("kek")
    kms = provider(own_openbao, "kek", timeout=1.0)
    wrapped = kms.wrap(DEK, AAD)
    own_openbao.stop()
    for call in (lambda: kms.unwrap(wrapped, AAD), lambda: kms.wrap(DEK, AAD), kms.status):
        started = time.monotonic()
        with pytest.raises(KeyProviderUnavailable) as info:
            call()
        assert time.monotonic() - started < 1.0 + 0.5
        assert info.value.metadata["cause"] == "unreachable"
        assert "127.0.0.1" not in info.value.message


def test_unresponsive_server_times_out(openbao: OpenBao, transit_key: str) -> None:
    """A listener that accepts and never answers: the read timeout bounds the call."""
    with socket.socket() as sink:
        sink.bind(("127.0.0.1", 0))
        sink.listen(8)
        address = f"http://127.0.0.1:{sink.getsockname()[1]}"
        kms = new_key_provider(
            f"vault-transit://transit/keys/{transit_key}",
            "transit",
            address=address,
            token="t",
            timeout=0.5,
        )
        started = time.monotonic()
        with pytest.raises(KeyProviderUnavailable) as info:
            kms.unwrap(WrappedDek("transit", 1, b"vault:v1:AAAA"), AAD)
        elapsed = time.monotonic() - started
    assert info.value.metadata["cause"] == "timeout"
    assert 0.4 < elapsed < 1.5


def test_tls_verification(tmp_path: Path) -> None:
    server = start_openbao(tmp_path / "tls-bao", tls=True)
    try:
        assert server.address.startswith("https://")
        assert server.ca_file is not None
        server.create_transit_key("kek")
        uri = "vault-transit://transit/keys/kek"
        common = {"address": server.address, "token": server.root_token, "timeout": 5.0}
        trusted = new_key_provider(uri, "transit", ca_file=str(server.ca_file), **common)
        assert trusted.unwrap(trusted.wrap(DEK, AAD), AAD) == DEK
        untrusted = new_key_provider(uri, "transit", **common)  # system CAs only
        with pytest.raises(KeyProviderUnavailable) as info:
            untrusted.wrap(DEK, AAD)
        assert info.value.metadata["cause"] == "tls"
    finally:
        server.stop()
