"""mTLS end to end: a real TLS gRPC server, the client's TlsConfig, and vaultctl's --tls-* flags."""

from __future__ import annotations

import datetime
import pathlib
from collections.abc import Iterator

import grpc
import pipvault_client as pv
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from test_client_fakes import FakeVault, running_fake_vault
from vaultctl.main import main


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    san: x509.GeneralName | None = None,
    usage: x509.ObjectIdentifier | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = issuer if issuer else (name, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName([san]), critical=False)
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    root = tmp_path_factory.mktemp("pki")
    ca_key = _key()
    ca = _cert("test ca", ca_key, None, ca=True)
    issuer = (ca.subject, ca_key)
    server_key, client_key = _key(), _key()
    server = _cert(
        "vault.test",
        server_key,
        issuer,
        san=x509.DNSName("vault.test"),
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
    )
    client = _cert(
        "security-engineer",
        client_key,
        issuer,
        san=x509.UniformResourceIdentifier("spiffe://test/ns/security/sa/vaultctl"),
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    files = {
        "ca": ca.public_bytes(serialization.Encoding.PEM),
        "server_cert": server.public_bytes(serialization.Encoding.PEM),
        "server_key": _pem_key(server_key),
        "client_cert": client.public_bytes(serialization.Encoding.PEM),
        "client_key": _pem_key(client_key),
    }
    paths = {}
    for name, data in files.items():
        path = root / f"{name}.pem"
        path.write_bytes(data)
        paths[name] = path
    return paths


@pytest.fixture
def tls_vault(pki: dict[str, pathlib.Path]) -> Iterator[FakeVault]:
    credentials = grpc.ssl_server_credentials(
        [(pki["server_key"].read_bytes(), pki["server_cert"].read_bytes())],
        root_certificates=pki["ca"].read_bytes(),
        require_client_auth=True,
    )
    with running_fake_vault(credentials) as fake:
        yield fake


def _tls(pki: dict[str, pathlib.Path]) -> pv.TlsConfig:
    return pv.TlsConfig(
        ca_file=pki["ca"],
        cert_file=pki["client_cert"],
        key_file=pki["client_key"],
        server_name="vault.test",
    )


def test_mtls_call(tls_vault: FakeVault, pki: dict[str, pathlib.Path]) -> None:
    with pv.VaultClient(tls_vault.address, token="t", tls=_tls(pki)) as client:
        client.get_key_status()
    call = tls_vault.last("GetKeyStatus")
    assert call.metadata["authorization"] == "Bearer t"


def test_without_client_certificate_the_handshake_fails(
    tls_vault: FakeVault, pki: dict[str, pathlib.Path]
) -> None:
    tls = pv.TlsConfig(ca_file=pki["ca"], server_name="vault.test")
    with (
        pv.VaultClient(tls_vault.address, tls=tls, timeout=2) as client,
        pytest.raises(pv.UnavailableError),
    ):
        client.get_key_status()
    assert tls_vault.calls == []


def test_wrong_server_name_fails(tls_vault: FakeVault, pki: dict[str, pathlib.Path]) -> None:
    tls = pv.TlsConfig(
        ca_file=pki["ca"],
        cert_file=pki["client_cert"],
        key_file=pki["client_key"],
        server_name="other.test",
    )
    with (
        pv.VaultClient(tls_vault.address, tls=tls, timeout=2) as client,
        pytest.raises(pv.UnavailableError),
    ):
        client.get_key_status()
    assert tls_vault.calls == []


def test_vaultctl_tls_flags(
    tls_vault: FakeVault,
    pki: dict[str, pathlib.Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PIPVAULT_TLS_CA", str(pki["ca"]))
    monkeypatch.delenv("PIPVAULT_TOKEN", raising=False)
    code = main(
        [
            "--addr",
            tls_vault.address,
            "--tls-cert",
            str(pki["client_cert"]),
            "--tls-key",
            str(pki["client_key"]),
            "--tls-server-name",
            "vault.test",
            "--json",
            "keys",
            "status",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert tls_vault.last("GetKeyStatus").time_remaining is not None
