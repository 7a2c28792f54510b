"""mTLS identities: the SPIFFE ID in a verified peer certificate, mapped to a policy principal.

The TLS handshake (client authentication required, our client CA) has already proved the peer
holds the certificate's key; this module decides what the certificate *says*. An X.509-SVID has
exactly one URI SAN (validators must reject more), a ``spiffe://`` ID in our trust domain, and we
accept it only in the strict form of the SPIFFE ID standard: lowercase trust domain of
``[a-z0-9._-]``, a non-empty path of ``[A-Za-z0-9._-]`` segments, none empty, ``.`` or ``..``; no
port, user info, query, fragment or percent-encoding. Anything else is not an identity (None, which
the edge answers with UNAUTHENTICATED).

The RPC edge reads the peer certificate from ``context.auth_context()`` and passes its URI SANs as
``CallCredentials.peer_spiffe_ids`` (see :func:`peer_uri_sans`); this module imports no gRPC.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cryptography import x509

from vault_server.auth.identity import CallCredentials
from vault_server.auth.policy import PolicyEntry
from vault_server.auth.policy_store import PolicyProvider
from vault_server.observability.logging import get_logger

_log = get_logger("pipvault.auth.spiffe")

MAX_SPIFFE_ID_BYTES = 2048
MAX_TRUST_DOMAIN = 255
AUTH_CONTEXT_PEER_CERT = "x509_pem_cert"  # grpc auth_context property holding the peer's PEM
_TRUST_DOMAIN = re.compile(r"[a-z0-9._-]+")
_SPIFFE_ID = re.compile(r"spiffe://([a-z0-9._-]+)((?:/[A-Za-z0-9._-]+)+)")


@dataclass(frozen=True)
class SpiffeId:
    trust_domain: str
    path: str

    def __str__(self) -> str:
        return f"spiffe://{self.trust_domain}{self.path}"


def parse_spiffe_id(uri: str) -> SpiffeId | None:
    """The SPIFFE ID in ``uri`` if it is a well-formed workload ID, else None."""
    if len(uri.encode("utf-8", "surrogatepass")) > MAX_SPIFFE_ID_BYTES:
        return None
    match = _SPIFFE_ID.fullmatch(uri)
    if match is None:
        return None
    trust_domain, path = match.group(1), match.group(2)
    if len(trust_domain) > MAX_TRUST_DOMAIN:
        return None
    if any(segment in (".", "..") for segment in path.split("/")[1:]):
        return None
    return SpiffeId(trust_domain, path)


def spiffe_ids_from_pem(pem: bytes) -> tuple[str, ...]:
    """Every URI SAN of the (first) certificate in ``pem``, in certificate order.

    Not only ``spiffe://`` URIs: the caller must see all of them to enforce "exactly one".
    An unparseable certificate, or one with a malformed or duplicated SAN extension, yields ``()``.
    """
    try:
        cert = x509.load_pem_x509_certificate(pem)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        return tuple(san.get_values_for_type(x509.UniformResourceIdentifier))
    except x509.ExtensionNotFound:
        return ()
    except ValueError:  # bad PEM/DER, duplicate extensions, undecodable names
        return ()


def peer_uri_sans(auth_context: Mapping[str, Iterable[bytes]]) -> tuple[str, ...]:
    """URI SANs of the peer certificate in a gRPC ``auth_context()`` (``()`` without one)."""
    pems = list(auth_context.get(AUTH_CONTEXT_PEER_CERT, ()))
    if len(pems) != 1:
        return ()
    return spiffe_ids_from_pem(pems[0])


def check_trust_domain(trust_domain: str) -> str:
    """Validate a configured trust domain (bare name, e.g. ``prod.example.com``).

    Raises:
        ValueError: not a SPIFFE trust domain name.
    """
    if (
        not trust_domain
        or len(trust_domain) > MAX_TRUST_DOMAIN
        or not _TRUST_DOMAIN.fullmatch(trust_domain)
        or trust_domain in (".", "..")
    ):
        raise ValueError(
            "a trust domain is a bare lowercase name of [a-z0-9._-] (no scheme, port or path)"
        )
    return trust_domain


class SpiffeSource:
    """Identity from the peer's X.509-SVID, mapped by ``spiffe_id`` in the policy.

    Args:
        policy_store: the shared policy (reloads apply here at once).
        trust_domain: the one trust domain accepted; compared exactly, never as a prefix.
    """

    def __init__(self, policy_store: PolicyProvider, trust_domain: str) -> None:
        self._store = policy_store
        self._trust_domain = check_trust_domain(trust_domain)

    @property
    def trust_domain(self) -> str:
        return self._trust_domain

    def spiffe_id(self, peer_uris: tuple[str, ...]) -> SpiffeId | None:
        """The peer's SPIFFE ID if the SAN list is an acceptable SVID of our trust domain."""
        if len(peer_uris) != 1:
            if len(peer_uris) > 1:
                _log.info("spiffe.rejected", why="several URI SANs", count=len(peer_uris))
            return None
        parsed = parse_spiffe_id(peer_uris[0])
        if parsed is None:
            _log.info("spiffe.rejected", why="not a well-formed SPIFFE ID")
            return None
        if parsed.trust_domain != self._trust_domain:
            _log.info(
                "spiffe.rejected", why="foreign trust domain", trust_domain=parsed.trust_domain
            )
            return None
        return parsed

    def identify(self, creds: CallCredentials) -> PolicyEntry | None:
        parsed = self.spiffe_id(creds.peer_spiffe_ids)
        if parsed is None:
            return None
        entry = self._store.current().by_spiffe_id(str(parsed))
        if entry is None:
            _log.info("spiffe.unknown", spiffe_id=str(parsed))
        return entry
