"""Test PKI generated at run time: CAs, a server certificate and SPIFFE client certificates.

Nothing here is checked in: every key is made fresh (EC P-256, fast) when a test asks for it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TRUST_DOMAIN = "prod.example"
ROUTER_ID = f"spiffe://{TRUST_DOMAIN}/ns/trading/sa/router"


@dataclass(frozen=True)
class Issued:
    """One certificate and its key, as objects and as PEM."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def serial(self) -> int:
        return self.cert.serial_number


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def make_ca(common_name: str) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def issue(
    ca: Issued,
    common_name: str,
    *,
    uris: Sequence[str] = (),
    dns: Sequence[str] = (),
    ips: Sequence[str] = (),
    server: bool = False,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> Issued:
    """A leaf signed by ``ca`` with the given SANs (none at all when all are empty)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(minutes=5))
        .not_valid_after(not_after or now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in uris]
    names += [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def server_cert(ca: Issued) -> Issued:
    return issue(ca, "localhost", dns=["localhost"], ips=["127.0.0.1"], server=True)


@dataclass(frozen=True)
class Pki:
    ca: Issued
    foreign_ca: Issued
    server: Issued
    clients: dict[str, Issued]


def build_pki(trust_domain: str = TRUST_DOMAIN) -> Pki:
    """A CA, a foreign CA, a server certificate and the client certificates of the mTLS matrix:

    ``valid`` (one SPIFFE URI SAN), ``no_san``, ``two_uris``, ``wrong_td``, ``prefix_td``
    (``spiffe://<td>.evil/...``), ``expired``, ``not_yet_valid`` and ``foreign`` (other CA).
    """
    ca = make_ca("pipvault test CA")
    foreign = make_ca("foreign CA")
    now = _now()
    router = f"spiffe://{trust_domain}/ns/trading/sa/router"
    clients = {
        "valid": issue(ca, "router", uris=[router]),
        "no_san": issue(ca, "router"),
        "two_uris": issue(
            ca, "router", uris=[router, f"spiffe://{trust_domain}/ns/trading/sa/admin"]
        ),
        "wrong_td": issue(ca, "router", uris=["spiffe://staging.example/ns/trading/sa/router"]),
        "prefix_td": issue(ca, "router", uris=[f"spiffe://{trust_domain}.evil/ns/trading"]),
        "expired": issue(
            ca,
            "router",
            uris=[router],
            not_before=now - dt.timedelta(days=2),
            not_after=now - dt.timedelta(days=1),
        ),
        "not_yet_valid": issue(
            ca,
            "router",
            uris=[router],
            not_before=now + dt.timedelta(days=1),
            not_after=now + dt.timedelta(days=2),
        ),
        "foreign": issue(foreign, "router", uris=[router]),
    }
    return Pki(ca, foreign, server_cert(ca), clients)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` the way a secret mount or cert-manager does (write aside, rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def write_server_files(directory: Path, server: Issued, client_ca: Issued) -> tuple[Path, ...]:
    """Write ``tls.crt``, ``tls.key`` and ``ca.crt``; returns the three paths in that order."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key, ca = directory / "tls.crt", directory / "tls.key", directory / "ca.crt"
    write_atomically(cert, server.cert_pem)
    write_atomically(key, server.key_pem)
    write_atomically(ca, client_ca.cert_pem)
    return cert, key, ca
