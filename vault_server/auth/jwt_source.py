"""JWT identities (Kubernetes projected service-account tokens first), mapped by subject.

``authorization: Bearer <jwt>`` is taken as a JWT only when the token has the JWT shape (three
base64url segments); other bearer tokens are left to the static-token source. A JWT is accepted
when all of these hold, else it is no identity (None, answered UNAUTHENTICATED):

* the header names ``alg`` RS256, ES256 or EdDSA (never ``none`` or HS*), a ``kid`` present in the
  JWKS file whose key is of that algorithm, and no ``crit`` extensions;
* the signature verifies (PyJWT), ``aud`` contains our audience, ``iss`` is the configured issuer
  (when one is configured);
* ``exp`` and ``iat`` are present and numeric; now < exp + skew, nbf (if any) <= now + skew,
  iat <= now + skew, and ``exp - iat`` is at most the lifetime cap (Kubernetes projected tokens
  default to 3600 s, so ask for ``expirationSeconds`` <= the cap);
* ``sub`` is a string that the policy maps (``jwt_subject``), e.g.
  ``system:serviceaccount:trading:router``.

Time is checked here against an injected clock, not inside PyJWT. The JWKS is a file (for example
the cluster's ``/openid/v1/jwks`` mounted by a ConfigMap), re-read when it changes; an unreadable or
invalid new file keeps the last good key set. Tokens are never logged.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vault_server.auth.identity import CallCredentials
from vault_server.auth.policy import PolicyEntry
from vault_server.auth.policy_store import FileWatch, PolicyProvider
from vault_server.observability.logging import get_logger

_log = get_logger("pipvault.auth.jwt")

ALGORITHMS = frozenset({"RS256", "ES256", "EdDSA"})
MAX_TOKEN_CHARS = 16 * 1024
MIN_RSA_BITS = 2048
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")


class JwksError(Exception):
    """The JWKS file is unreadable or holds no usable signing key."""


class _Refused(Exception):
    """A token check failed; the message is a short, token-free reason for the log."""


def parse_jwks(data: bytes) -> dict[str, jwt.PyJWK]:
    """Usable verification keys by ``kid``: RS256 (RSA >= 2048), ES256 (P-256) or EdDSA keys.

    Keys for other algorithms, symmetric keys and encryption keys are skipped.

    Raises:
        JwksError: not a JWKS, a key without ``kid``, a duplicated ``kid``, or no usable key.
    """
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise JwksError("JWKS: not JSON") from exc
    keys = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(keys, list):
        raise JwksError("JWKS: no 'keys' list")
    out: dict[str, jwt.PyJWK] = {}
    for raw in keys:
        kid = raw.get("kid") if isinstance(raw, dict) else None
        if not isinstance(kid, str) or not kid:
            raise JwksError("JWKS: every key needs a non-empty 'kid'")
        if kid in out:
            raise JwksError(f"JWKS: duplicate kid {kid!r}")
        key = _usable_key(raw)
        if key is not None:
            out[kid] = key
    if not out:
        raise JwksError("JWKS: no usable RS256/ES256/EdDSA signing key")
    return out


def _usable_key(raw: dict[str, Any]) -> jwt.PyJWK | None:
    if raw.get("kty") == "oct" or raw.get("use", "sig") != "sig" or "d" in raw:
        return None  # symmetric, encryption-only, or private material in a public key set
    if raw.get("alg") is not None and raw.get("alg") not in ALGORITHMS:
        return None
    try:
        key = jwt.PyJWK(raw)
    except jwt.PyJWTError:
        return None
    if key.algorithm_name not in ALGORITHMS:
        return None
    if isinstance(key.key, rsa.RSAPublicKey) and key.key.key_size < MIN_RSA_BITS:
        return None
    if isinstance(key.key, ec.EllipticCurvePublicKey) and not isinstance(
        key.key.curve, ec.SECP256R1
    ):
        return None  # ES256 means P-256
    if not isinstance(key.key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | Ed25519PublicKey):
        return None
    return key


def bearer_jwt(metadata: Mapping[str, str]) -> str | None:
    """The bearer token if it has the shape of a compact JWS (three base64url segments)."""
    scheme, _, token = metadata.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_CHARS:
        return None
    parts = token.split(".")
    if len(parts) != 3 or not all(_SEGMENT.fullmatch(p) for p in parts[:2]):
        return None
    if parts[2] and not _SEGMENT.fullmatch(parts[2]):
        return None
    return token


def _numeric(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Refused(f"claim {name} is not a number")
    try:
        number = float(value)
    except OverflowError as exc:
        raise _Refused(f"claim {name} is out of range") from exc
    if not math.isfinite(number):  # json accepts NaN/Infinity; NaN compares false to everything
        raise _Refused(f"claim {name} is not a finite number")
    return number


class JwtSource:
    """Identity from a signed JWT, mapped by ``jwt_subject`` in the policy.

    Raises:
        JwksError: the JWKS file is unusable at construction (start-up).
        ValueError: audience empty or limits out of range.
    """

    def __init__(
        self,
        policy_store: PolicyProvider,
        jwks_path: Path,
        audience: str,
        issuer: str | None = None,
        max_clock_skew_s: float = 60,
        max_lifetime_s: float = 3600,
        *,
        jwks_check_interval_s: float = 5.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not audience:
            raise ValueError("audience: required")
        if not 0 <= max_clock_skew_s <= 600 or max_lifetime_s <= 0:
            raise ValueError("max_clock_skew_s must be in [0, 600] and max_lifetime_s > 0")
        self._store = policy_store
        self._audience = audience
        self._issuer = issuer
        self._skew = max_clock_skew_s
        self._lifetime = max_lifetime_s
        self._interval = jwks_check_interval_s
        self._clock = clock
        self._monotonic = monotonic
        self._watch = FileWatch(jwks_path, 1024 * 1024)
        self._lock = threading.Lock()
        self._last_problem: str | None = None
        try:
            self._watch.poll()
        except OSError as exc:
            raise JwksError(f"JWKS file {jwks_path}: {exc.strerror or exc}") from exc
        self._keys = parse_jwks(self._watch.data)
        self._checked_at = monotonic()

    def reload_if_changed(self, min_interval_s: float = 0.0) -> str | None:
        """Re-read the JWKS file if it changed (and ``min_interval_s`` has passed since the last
        look). Returns why a changed file was refused, else None; the old keys stay on refusal."""
        with self._lock:
            now = self._monotonic()
            if now - self._checked_at < min_interval_s:
                return None
            self._checked_at = now
            try:
                if not self._watch.poll():
                    return None
                keys = parse_jwks(self._watch.data)
            except (OSError, JwksError) as exc:
                problem = str(exc) if isinstance(exc, JwksError) else f"JWKS file: {exc.strerror}"
                if problem != self._last_problem:
                    _log.warning("jwks.reload_refused", problem=problem)
                    self._last_problem = problem
                return problem
            self._keys, self._last_problem = keys, None
        _log.info("jwks.reloaded", kids=",".join(sorted(keys)))
        return None

    def identify(self, creds: CallCredentials) -> PolicyEntry | None:
        token = bearer_jwt(creds.metadata)
        if token is None:
            return None
        self.reload_if_changed(self._interval)
        try:
            subject = self._verify(token)
        except (_Refused, jwt.PyJWTError, ValueError) as exc:
            why = str(exc) if isinstance(exc, _Refused) else exc.__class__.__name__
            _log.info("jwt.rejected", why=why)
            return None
        entry = self._store.current().by_jwt_subject(subject)
        if entry is None:
            _log.info("jwt.unknown_subject", subject=subject[:255])
        return entry

    def _verify(self, token: str) -> str:
        header = jwt.get_unverified_header(token)
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALGORITHMS:
            raise _Refused("algorithm not accepted")
        if "crit" in header or "b64" in header:
            raise _Refused("critical header extensions are not supported")
        if not isinstance(kid, str) or not kid:
            raise _Refused("no kid")
        key = self._keys.get(kid)
        if key is None:
            self.reload_if_changed(min(1.0, self._interval))  # a key rotation we have not seen
            key = self._keys.get(kid)
        if key is None:
            raise _Refused("unknown kid")
        if key.algorithm_name != alg:
            raise _Refused("algorithm does not match the key")
        require = ["exp", "iat", "sub", "aud"] + (["iss"] if self._issuer is not None else [])
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key.key,
            algorithms=[key.algorithm_name],
            audience=self._audience,
            issuer=self._issuer,
            options={
                "require": require,
                "verify_signature": True,
                "verify_aud": True,
                "verify_iss": self._issuer is not None,
                "verify_sub": True,
                "verify_exp": False,  # checked below against the injected clock
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
        self._check_times(claims)
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise _Refused("no subject")
        return subject

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        now = self._clock()
        exp, iat, nbf = (_numeric(claims, n) for n in ("exp", "iat", "nbf"))
        if exp is None or iat is None:
            raise _Refused("exp and iat are required")
        if now >= exp + self._skew:
            raise _Refused("expired")
        if nbf is not None and nbf > now + self._skew:
            raise _Refused("not yet valid")
        if iat > now + self._skew:
            raise _Refused("issued in the future")
        if exp <= iat:
            raise _Refused("expires before it was issued")
        if exp - iat > self._lifetime:
            raise _Refused("lifetime longer than the cap")
