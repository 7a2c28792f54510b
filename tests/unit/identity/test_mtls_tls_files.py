"""Server TLS material: validation at load, reload on change, last good material kept."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.certs import (
    Issued,
    issue,
    make_ca,
    server_cert,
    write_atomically,
    write_server_files,
)
from vault_server.auth.tls import TlsConfigError, TlsFiles, build_material


class Mono:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def ca() -> Issued:
    return make_ca("test CA")


def _files(
    tmp_path: Path, server: Issued, ca: Issued, **kw: object
) -> tuple[TlsFiles, tuple[Path, ...]]:
    paths = write_server_files(tmp_path, server, ca)
    return TlsFiles(*paths, min_check_interval_s=0, **kw), paths  # type: ignore[arg-type]


def test_initial_material_is_validated_and_described(tmp_path: Path, ca: Issued) -> None:
    server = server_cert(ca)
    files, _ = _files(tmp_path, server, ca)
    m = files.current
    assert m.serial == server.serial
    assert m.certificate_chain_pem == server.cert_pem
    assert m.private_key_pem == server.key_pem
    assert m.client_ca_pem == ca.cert_pem
    assert m.require_client_auth is True
    assert m.not_after == server.cert.not_valid_after_utc


def test_key_must_match_the_certificate(tmp_path: Path, ca: Issued) -> None:
    a, b = server_cert(ca), server_cert(ca)
    with pytest.raises(TlsConfigError, match="does not match"):
        build_material(a.cert_pem, b.key_pem, ca.cert_pem, dt.datetime.now(dt.UTC))
    paths = write_server_files(tmp_path, a, ca)
    write_atomically(paths[1], b.key_pem)
    with pytest.raises(TlsConfigError, match="does not match"):
        TlsFiles(*paths)


@pytest.mark.parametrize(
    ("which", "data", "match"),
    [
        ("cert", b"", "certificate chain"),
        ("cert", b"-----BEGIN CERTIFICATE-----\nMIIB\n", "certificate chain"),
        ("key", b"not a key", "private key"),
        ("ca", b"garbage", "client CA"),
    ],
)
def test_unparseable_files_are_refused(ca: Issued, which: str, data: bytes, match: str) -> None:
    s = server_cert(ca)
    args = {"cert": s.cert_pem, "key": s.key_pem, "ca": ca.cert_pem} | {which: data}
    with pytest.raises(TlsConfigError, match=match):
        build_material(args["cert"], args["key"], args["ca"], dt.datetime.now(dt.UTC))


def test_a_leaf_is_not_a_client_ca(ca: Issued) -> None:
    s = server_cert(ca)
    with pytest.raises(TlsConfigError, match="not a CA"):
        build_material(s.cert_pem, s.key_pem, s.cert_pem, dt.datetime.now(dt.UTC))


def test_expired_and_future_certificates_are_refused(ca: Issued) -> None:
    now = dt.datetime.now(dt.UTC)
    old = issue(
        ca,
        "localhost",
        dns=["localhost"],
        server=True,
        not_before=now - dt.timedelta(days=2),
        not_after=now - dt.timedelta(days=1),
    )
    future = issue(
        ca,
        "localhost",
        dns=["localhost"],
        server=True,
        not_before=now + dt.timedelta(hours=1),
        not_after=now + dt.timedelta(days=1),
    )
    with pytest.raises(TlsConfigError, match="expired"):
        build_material(old.cert_pem, old.key_pem, ca.cert_pem, now)
    with pytest.raises(TlsConfigError, match="not valid before"):
        build_material(future.cert_pem, future.key_pem, ca.cert_pem, now)


def test_small_rsa_keys_and_encrypted_keys_are_refused(ca: Issued) -> None:
    now = dt.datetime.now(dt.UTC)
    s = server_cert(ca)
    encrypted = s.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    with pytest.raises(TlsConfigError, match="unencrypted"):
        build_material(s.cert_pem, encrypted, ca.cert_pem, now)
    # A 1024-bit RSA server key, certified by the CA.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    cert = (
        x509.CertificateBuilder()
        .subject_name(s.cert.subject)
        .issuer_name(ca.cert.subject)
        .public_key(small.public_key())
        .serial_number(7)
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .sign(ca.key, hashes.SHA256())
    )
    key_pem = small.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(TlsConfigError, match="2048"):
        build_material(cert.public_bytes(serialization.Encoding.PEM), key_pem, ca.cert_pem, now)


def test_missing_files_stop_start_up(tmp_path: Path) -> None:
    with pytest.raises(TlsConfigError, match="No such file"):
        TlsFiles(tmp_path / "a", tmp_path / "b", tmp_path / "c")


def test_rotation_is_picked_up_and_reported_once_per_subscriber(tmp_path: Path, ca: Issued) -> None:
    first = server_cert(ca)
    files, _ = _files(tmp_path, first, ca)
    data, admin = files.subscribe(), files.subscribe()
    assert data.initial.serial == first.serial
    assert data.poll() is None  # nothing changed

    second = server_cert(ca)
    new_ca = make_ca("next CA")
    write_server_files(tmp_path, second, new_ca)
    got = data.poll()
    assert got is not None and got.serial == second.serial and got.client_ca_pem == new_ca.cert_pem
    assert data.poll() is None  # this listener already has it
    other = admin.poll()  # every listener gets it, not only the first to ask
    assert other is not None and other.serial == second.serial
    assert files.generation == 1


def test_a_half_written_certificate_keeps_the_last_good_material(
    tmp_path: Path, ca: Issued
) -> None:
    first = server_cert(ca)
    files, (cert, key, _) = _files(tmp_path, first, ca)
    sub = files.subscribe()
    second = server_cert(ca)
    cert.write_bytes(second.cert_pem[: len(second.cert_pem) // 2])  # writer not done yet
    assert sub.poll() is None
    assert files.current.serial == first.serial
    cert.write_bytes(second.cert_pem)  # new cert, old key: still not a valid pair
    assert sub.poll() is None
    assert files.current.serial == first.serial
    key.write_bytes(second.key_pem)
    got = sub.poll()
    assert got is not None and got.serial == second.serial


def test_polls_are_throttled_and_touch_is_not_a_change(tmp_path: Path, ca: Issued) -> None:
    mono = Mono()
    first = server_cert(ca)
    paths = write_server_files(tmp_path, first, ca)
    files = TlsFiles(*paths, min_check_interval_s=5.0, monotonic=mono)
    sub = files.subscribe()
    os.utime(paths[0])  # touched, same content
    mono.t = 10
    assert sub.poll() is None
    assert files.generation == 0
    second = server_cert(ca)
    write_server_files(tmp_path, second, ca)
    mono.t = 12  # within the interval: not looked at yet
    assert sub.poll() is None
    mono.t = 15
    got = sub.poll()
    assert got is not None and got.serial == second.serial


def test_same_size_rewrite_is_noticed(tmp_path: Path, ca: Issued) -> None:
    """A rewrite keeping size, inode and mtime (coarse clocks) is caught by the content hash."""
    files, (_, _, ca_path) = _files(tmp_path, server_cert(ca), ca)
    sub = files.subscribe()
    st = ca_path.stat()
    for _ in range(100):  # same subject; ECDSA signature lengths vary, so find an equal-length one
        other_ca = make_ca("test CA")
        if len(other_ca.cert_pem) == len(ca.cert_pem):
            break
    else:
        pytest.fail("no same-length CA certificate generated")
    ca_path.write_bytes(other_ca.cert_pem)
    os.utime(ca_path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert ca_path.stat().st_size == st.st_size and ca_path.stat().st_ino == st.st_ino
    got = sub.poll()
    assert got is not None and got.client_ca_pem == other_ca.cert_pem


def test_a_change_seen_while_another_file_is_missing_is_not_lost(
    tmp_path: Path, ca: Issued
) -> None:
    first = server_cert(ca)
    files, (cert, key, _) = _files(tmp_path, first, ca)
    sub = files.subscribe()
    second = server_cert(ca)
    old_key = key.read_bytes()
    write_atomically(cert, second.cert_pem)
    key.unlink()  # mid-swap: the cert is new, the key is gone
    assert sub.poll() is None
    key.write_bytes(old_key)  # the old key comes back: the new cert alone does not match it...
    assert sub.poll() is None
    assert files.current.serial == first.serial
    write_atomically(key, second.key_pem)  # ...and the pair is applied once complete
    got = sub.poll()
    assert got is not None and got.serial == second.serial


def test_a_new_certificate_with_the_old_key_is_applied(tmp_path: Path, ca: Issued) -> None:
    """Renewal that keeps the key: only the cert file changes; a failed read in between is fine."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    first = server_cert(ca)
    files, (cert, key, _) = _files(tmp_path, first, ca)
    sub = files.subscribe()
    now = dt.datetime.now(dt.UTC)
    renewed = (
        x509.CertificateBuilder()
        .subject_name(first.cert.subject)
        .issuer_name(ca.cert.subject)
        .public_key(first.key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            first.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value,
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )
    key_pem = key.read_bytes()
    key.unlink()
    write_atomically(cert, renewed.public_bytes(serialization.Encoding.PEM))
    assert sub.poll() is None  # key missing: keep serving
    key.write_bytes(key_pem)  # same key content as before: only the cert "changed"
    got = sub.poll()
    assert got is not None and got.serial == renewed.serial_number
