"""Server TLS material for mTLS listeners, reloaded from disk without a restart.

``TlsFiles`` watches the certificate chain, private key and client-CA bundle (mtime, size and
content hash). A change that forms a valid set (chain and CA parse, the key matches the leaf, the
leaf is within its validity period, RSA keys >= 2048 bits) replaces the material in force; a
half-written or invalid set is refused with a warning and the last good material keeps serving.
The first load must succeed (``TlsConfigError`` stops start-up).

gRPC is imported only by the RPC edge; it turns this into credentials in a few lines::

    sub = tls_files.subscribe()
    def config(m): return grpc.ssl_server_certificate_configuration(
        [(m.private_key_pem, m.certificate_chain_pem)], root_certificates=m.client_ca_pem)
    def fetcher(): m = sub.poll(); return None if m is None else config(m)
    grpc.dynamic_ssl_server_credentials(config(sub.initial), fetcher,
                                        require_client_authentication=True)

gRPC calls the fetcher on its own threads at every new handshake: existing connections keep the
material they started with, new ones get the newest good one. Polls touch the disk at most once per
``min_check_interval_s``. Build one credentials object (one subscription) per listener: gRPC hands
the initial configuration only to the first server that uses a credentials object.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from vault_server.auth.policy_store import FileWatch
from vault_server.observability.logging import get_logger

_log = get_logger("pipvault.auth.tls")

REQUIRE_CLIENT_AUTH = True  # never optional: an mTLS listener without it authenticates nobody
MIN_RSA_BITS = 2048
NOT_BEFORE_SKEW = dt.timedelta(minutes=5)
MAX_PEM_BYTES = 1024 * 1024


class TlsConfigError(Exception):
    """The TLS files do not form a usable server configuration; the message says why."""


@dataclass(frozen=True)
class TlsMaterial:
    """One validated set, ready for ``grpc.ssl_server_certificate_configuration``."""

    private_key_pem: bytes
    certificate_chain_pem: bytes
    client_ca_pem: bytes
    serial: int
    not_after: dt.datetime
    fingerprint_sha256: str
    require_client_auth: bool = REQUIRE_CLIENT_AUTH


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def build_material(
    chain_pem: bytes, key_pem: bytes, client_ca_pem: bytes, now: dt.datetime
) -> TlsMaterial:
    """Validate a certificate chain, key and client-CA bundle as one server configuration.

    Raises:
        TlsConfigError: a file does not parse, the key does not match, a CA is not a CA, or the
            leaf is expired / not yet valid.
    """
    try:
        return _build(chain_pem, key_pem, client_ca_pem, now)
    except TlsConfigError:
        raise
    except Exception as exc:  # unsupported algorithms and other parser surprises
        raise TlsConfigError(f"unusable TLS files ({exc.__class__.__name__})") from exc


def _build(chain_pem: bytes, key_pem: bytes, client_ca_pem: bytes, now: dt.datetime) -> TlsMaterial:
    try:
        chain = x509.load_pem_x509_certificates(chain_pem)
    except ValueError as exc:
        raise TlsConfigError("certificate chain: not a PEM certificate list") from exc
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:  # TypeError: encrypted key
        raise TlsConfigError("private key: not an unencrypted PEM private key") from exc
    try:
        cas = x509.load_pem_x509_certificates(client_ca_pem)
    except ValueError as exc:
        raise TlsConfigError("client CA: not a PEM certificate list") from exc
    leaf = chain[0]
    if _spki(key.public_key()) != _spki(leaf.public_key()):
        raise TlsConfigError("private key: does not match the certificate")
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < MIN_RSA_BITS:
        raise TlsConfigError(f"private key: RSA keys need at least {MIN_RSA_BITS} bits")
    if now > leaf.not_valid_after_utc:
        raise TlsConfigError(f"certificate: expired at {leaf.not_valid_after_utc.isoformat()}")
    if now + NOT_BEFORE_SKEW < leaf.not_valid_before_utc:
        raise TlsConfigError(
            f"certificate: not valid before {leaf.not_valid_before_utc.isoformat()}"
        )
    for ca in cas:
        try:
            basic = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
        except (x509.ExtensionNotFound, ValueError) as exc:
            raise TlsConfigError("client CA: a certificate has no basic constraints") from exc
        if not basic.ca:
            raise TlsConfigError("client CA: a certificate is not a CA certificate")
    return TlsMaterial(
        private_key_pem=key_pem,
        certificate_chain_pem=chain_pem,
        client_ca_pem=client_ca_pem,
        serial=leaf.serial_number,
        not_after=leaf.not_valid_after_utc,
        fingerprint_sha256=hashlib.sha256(
            leaf.public_bytes(serialization.Encoding.DER)
        ).hexdigest(),
    )


def _spki(public_key: object) -> bytes:
    dump = getattr(public_key, "public_bytes", None)
    if dump is None:
        raise TlsConfigError("private key: unsupported key type")
    out: bytes = dump(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return out


class TlsFiles:
    """The server's certificate chain, key and client CA, following their files.

    Args:
        cert_file: PEM chain, leaf first.
        key_file: PEM private key (unencrypted) of the leaf.
        client_ca_file: PEM bundle of the CAs that issue client certificates (SVIDs).
        min_check_interval_s: polls closer together than this reuse the last result.
        monotonic, now: injected clocks.

    Raises:
        TlsConfigError: the initial files are unreadable or invalid.
    """

    def __init__(
        self,
        cert_file: Path,
        key_file: Path,
        client_ca_file: Path,
        *,
        min_check_interval_s: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], dt.datetime] = _now,
    ) -> None:
        self._watches = tuple(
            FileWatch(p, MAX_PEM_BYTES) for p in (cert_file, key_file, client_ca_file)
        )
        self._interval = min_check_interval_s
        self._monotonic = monotonic
        self._now = now
        self._lock = threading.Lock()
        self._last_problem: str | None = None
        self._pending = False
        try:
            for watch in self._watches:
                watch.poll()
        except OSError as exc:
            raise TlsConfigError(f"{exc.filename}: {exc.strerror or exc}") from exc
        self._current = self._build(now())
        self._checked_at = monotonic()
        self.generation = 0

    def _build(self, now: dt.datetime) -> TlsMaterial:
        cert, key, ca = (w.data for w in self._watches)
        return build_material(cert, key, ca, now)

    @property
    def current(self) -> TlsMaterial:
        return self._current

    def poll(self) -> TlsMaterial:
        """The newest good material, re-reading the files if the interval has passed."""
        with self._lock:
            now_mono = self._monotonic()
            if now_mono - self._checked_at < self._interval:
                return self._current
            self._checked_at = now_mono
            try:
                for watch in self._watches:  # each poll: a change seen is kept until built
                    self._pending = watch.poll() or self._pending
            except OSError as exc:
                self._refuse(f"{exc.filename}: {exc.strerror or exc}")
                return self._current
            if not self._pending:
                return self._current
            self._pending = False  # the same invalid set is not re-validated on every poll
            try:
                material = self._build(self._now())
            except TlsConfigError as exc:
                self._refuse(str(exc))
                return self._current
            self._current, self._last_problem = material, None
            self.generation += 1
        _log.info(
            "tls.reloaded",
            serial=f"{material.serial:x}",
            not_after=material.not_after.isoformat(),
            generation=self.generation,
        )
        return material

    def _refuse(self, problem: str) -> None:
        if problem != self._last_problem:
            _log.warning("tls.reload_refused", problem=problem, serving=f"{self._current.serial:x}")
            self._last_problem = problem

    def subscribe(self) -> TlsSubscription:
        """A per-listener view that reports each new material once (for one gRPC fetcher)."""
        return TlsSubscription(self)


class TlsSubscription:
    """``initial`` for the credentials, then ``poll()`` from the fetcher: the new material since
    this subscription last reported, or None when the listener already has the newest."""

    def __init__(self, files: TlsFiles) -> None:
        self._files = files
        self.initial = files.current
        self._served = self.initial
        self._lock = threading.Lock()

    def poll(self) -> TlsMaterial | None:
        material = self._files.poll()
        with self._lock:
            if material is self._served:
                return None
            self._served = material
            return material
