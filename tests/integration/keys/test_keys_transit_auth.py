"""Transit authentication beyond a static token, against a real OpenBao, with the files from
deploy/openbao/: the least-privilege policy is enough and no more (AppRole), and a Kubernetes
service-account login goes through OpenBao's kubernetes auth, which asks a loopback stub of the
Kubernetes TokenReview API (HTTPS) whether the pod's token is valid."""

from __future__ import annotations

import json
import secrets
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.integration.crypto.openbao import OpenBao, start_openbao
from tests.support.certs import make_ca, server_cert
from vault_server.config import ConfigError, load_settings
from vault_server.core.errors import KeyProviderUnavailable
from vault_server.core.secret import Secret
from vault_server.crypto.providers import new_key_provider

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy" / "openbao"
DEK = Secret(secrets.token_bytes(32))
AAD = b"ws|cred|1"


@pytest.fixture(scope="module")
def bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    server = start_openbao(tmp_path_factory.mktemp("openbao"))
    try:
        server.create_transit_key("pipvault")
        server.create_transit_key("other")
        server.client().sys.create_or_update_policy(
            name="pipvault-transit", policy=(DEPLOY / "pipvault-transit.hcl").read_text()
        )
        yield server
    finally:
        server.stop()


def _transit(bao: OpenBao, **auth: Any) -> Any:
    return new_key_provider(
        "vault-transit://transit/keys/pipvault", "transit", address=bao.address, timeout=5.0, **auth
    )


def test_deploy_policy_is_enough_and_no_more(bao: OpenBao) -> None:
    root = bao.client()
    root.sys.enable_auth_method("approle", path="approle-deploy")
    root.auth.approle.create_or_update_approle(
        "pipvault",
        token_policies=["pipvault-transit"],
        token_ttl="1h",
        mount_point="approle-deploy",
    )
    role_id = root.auth.approle.read_role_id("pipvault", mount_point="approle-deploy")["data"][
        "role_id"
    ]
    secret_id = root.auth.approle.generate_secret_id("pipvault", mount_point="approle-deploy")[
        "data"
    ]["secret_id"]
    kms = _transit(bao, role_id=role_id, secret_id=secret_id, approle_mount="approle-deploy")
    wrapped = kms.wrap(DEK, AAD)
    assert kms.unwrap(wrapped, AAD) == DEK
    before = kms.active_version()
    assert kms.rotate() == before + 1
    moved = kms.rewrap(wrapped, AAD)
    assert moved.kek_version == before + 1 and kms.unwrap(moved, AAD) == DEK
    kms.retire(before)
    assert kms.status().versions[0].version == before + 1
    # The same token can do nothing else: no other key, no export, no deletion, no sys/.
    login = bao.client(token="")
    login.auth.approle.login(role_id=role_id, secret_id=secret_id, mount_point="approle-deploy")
    import hvac

    for attempt in (
        lambda: login.secrets.transit.encrypt_data("other", plaintext="AAAA", context="AAAA"),
        lambda: login.secrets.transit.read_key("other"),
        lambda: login.secrets.transit.export_key("pipvault", key_type="encryption-key"),
        lambda: login.secrets.transit.delete_key("pipvault"),
        login.sys.list_mounted_secrets_engines,
    ):
        with pytest.raises(hvac.exceptions.Forbidden):
            attempt()


class _TokenReview(BaseHTTPRequestHandler):
    """``POST /apis/authentication.k8s.io/v1/tokenreviews``: valid for the registered tokens."""

    valid: dict[str, tuple[str, str, str]] = {}  # token -> (namespace, name, uid)
    seen: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        type(self).seen.append(
            {"path": self.path, "auth": self.headers.get("authorization"), "body": body}
        )
        spec = body.get("spec", {})
        who = type(self).valid.get(spec.get("token", ""))
        status: dict[str, Any] = {"authenticated": False}
        if who is not None and self.path == "/apis/authentication.k8s.io/v1/tokenreviews":
            ns, name, uid = who
            status = {
                "authenticated": True,
                "user": {"username": f"system:serviceaccount:{ns}:{name}", "uid": uid,
                         "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}"]},
                "audiences": spec.get("audiences") or [],
            }  # fmt: skip
        answer = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                             "status": status}).encode()  # fmt: skip
        self.send_response(201)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


def _sa_token(key: ec.EllipticCurvePrivateKey, ns: str, name: str, uid: str) -> str:
    """A projected service-account token (ES256; only the TokenReview stub vouches for it)."""
    now = int(time.time())
    claims = {
        "iss": "https://kubernetes.default.svc", "sub": f"system:serviceaccount:{ns}:{name}",
        "aud": ["openbao"], "iat": now, "nbf": now, "exp": now + 600,
        "kubernetes.io": {"namespace": ns, "serviceaccount": {"name": name, "uid": uid}},
    }  # fmt: skip
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pyjwt.encode(claims, pem, algorithm="ES256")


def test_kubernetes_login_through_a_token_review_stub(bao: OpenBao, tmp_path: Path) -> None:
    ca = make_ca("k8s-test-ca")
    cert = server_cert(ca)
    (tmp_path / "api.pem").write_bytes(cert.cert_pem)
    (tmp_path / "api.key").write_bytes(cert.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "api.pem", tmp_path / "api.key")
    api = ThreadingHTTPServer(("127.0.0.1", 0), _TokenReview)
    api.socket = context.wrap_socket(api.socket, server_side=True)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    try:
        root = bao.client()
        root.sys.enable_auth_method("kubernetes", path="kubernetes")
        root.auth.kubernetes.configure(
            kubernetes_host=f"https://127.0.0.1:{api.server_address[1]}",
            kubernetes_ca_cert=ca.cert_pem.decode(), disable_local_ca_jwt=True,
        )  # fmt: skip
        role = json.loads((DEPLOY / "kubernetes-role.json").read_text())
        root.write_data("auth/kubernetes/role/pipvault", data=role)
        key = ec.generate_private_key(ec.SECP256R1())
        good = _sa_token(key, "trading", "pipvault", str(uuid.uuid4()))
        intruder = _sa_token(key, "default", "intruder", str(uuid.uuid4()))
        _TokenReview.valid = {
            good: ("trading", "pipvault", pyjwt.decode(good, options={"verify_signature": False})["kubernetes.io"]["serviceaccount"]["uid"]),
            intruder: ("default", "intruder", pyjwt.decode(intruder, options={"verify_signature": False})["kubernetes.io"]["serviceaccount"]["uid"]),
        }  # fmt: skip
        jwt_file = tmp_path / "token"
        jwt_file.write_text(good)
        kms = _transit(bao, kubernetes_role="pipvault", kubernetes_jwt_path=str(jwt_file))
        assert kms.unwrap(kms.wrap(DEK, AAD), AAD) == DEK
        review = _TokenReview.seen[-1]
        assert review["path"] == "/apis/authentication.k8s.io/v1/tokenreviews"
        assert review["body"]["spec"]["token"] == good
        assert review["body"]["spec"]["audiences"] == ["openbao"]
        # A valid token of another service account is not bound to the role: refused.
        jwt_file.write_text(intruder)
        stranger = _transit(bao, kubernetes_role="pipvault", kubernetes_jwt_path=str(jwt_file))
        with pytest.raises(KeyProviderUnavailable) as refused:
            stranger.wrap(DEK, AAD)
        assert refused.value.metadata["cause"] in {"authentication", "permission_denied"}
        assert good not in refused.value.message and intruder not in str(refused.value.metadata)
    finally:
        api.shutdown()
        api.server_close()


@pytest.mark.parametrize(
    ("keys", "env", "named"),
    [
        ({"transit_auth": "approle"}, {}, "keys.transit_role_id"),
        ({"transit_auth": "approle", "transit_role_id": "r"}, {}, "keys.transit_secret_id_env"),
        ({"transit_auth": "kubernetes"}, {}, "keys.transit_kubernetes_role"),
        ({"transit_auth": "token"}, {}, "keys.transit_token_env"),
        ({"transit_address": None}, {"VAULT_TOKEN": "t"}, "keys.transit_address"),
        ({"transit_address": "http://10.0.0.1:8200"}, {"VAULT_TOKEN": "t"}, "keys.transit_address"),
    ],
)
def test_transit_config_errors_name_the_setting_once(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    keys: dict[str, Any],
    env: dict[str, str],
    named: str,
) -> None:
    from vault_server.app import build_key_providers
    from vault_server.core.clock import SystemClock, SystemRandom

    for var in ("VAULT_TOKEN", "VAULT_SECRET_ID"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    settings = load_settings(
        None, mode="dev", home=str(tmp_path),
        keys={"providers": {"transit": "vault-transit://transit/keys/pipvault"}, "primary": "transit",
              "transit_address": "http://127.0.0.1:8200", **keys},
    )  # fmt: skip
    with pytest.raises(ConfigError) as err:
        build_key_providers(settings, SystemClock(), SystemRandom())
    message = str(err.value)
    assert message.startswith(f"{named}: ") and message.count("keys.") == 1, message
