"""A signature over a prehash string, sent in headers: Bybit v5, OKX v5 and their kin.

The venues of this family (Bybit, OKX; KuCoin, Bitget next) sign one string built from the
timestamp and the request, and send key, timestamp and signature (and, for some, a passphrase or
the receive window) as headers. What differs is declared, not coded:

* ``timestamp``: how the clock is written (epoch milliseconds, ISO-8601 …);
* ``prehash``: which parts form the signed string (:data:`BYBIT_PREHASH`: timestamp, key,
  window, then the query or the body; :data:`PATH_PREHASH`: timestamp, METHOD, path with its
  ``?query``, body — OKX, KuCoin, Bitget);
* ``encoding``: hex or base64 for HMAC keys (RSA keys always sign to base64);
* ``headers``: the header names, in order, of the parts the venue wants;
* freshness: ``expire_at_ms = now + recv_window``, capped at ``max_age_ms`` where the venue's
  own tolerance is shorter (OKX: 30 s), and optionally an expiry header on some paths (OKX's
  ``expTime``, *not* signed, so only advisory);
* ``demo_header``: a header that marks non-live requests where the venue has no demo host;
* ``mac``: a keyed MAC of the secret that replaces the key algorithm's own signature (Gate's hex
  HMAC-SHA512 over a raw ASCII secret);
* the ``signed_passphrase`` part: ``base64(HMAC_SHA256(secret, passphrase))`` instead of the
  plain passphrase (KuCoin API keys version 2), so the passphrase itself is never sent.

GET parameters go in the query string and are signed exactly as sent; other methods carry a
compact JSON body (``separators=(",", ":")``, ASCII-escaped) and the signature covers exactly
those bytes. ``Content-Type: application/json`` follows the auth headers when there is a body.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from vault_server.brokers import _http_common as hc
from vault_server.brokers import _signing_common as sc
from vault_server.brokers.base import Environment, PreparedRequest, SigningContext, VenueCredential
from vault_server.brokers.schemes import keys
from vault_server.core.errors import InvalidArgument
from vault_server.core.secret import Secret

if TYPE_CHECKING:
    from vault_server.brokers.spec import Call

Part = Literal["key", "sign", "timestamp", "window", "passphrase", "signed_passphrase"]
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_PASSPHRASE = re.compile(rb"[\x20-\x7e]{1,128}")


@dataclass(frozen=True)
class Prehash:
    """The parts a prehash string may be built from."""

    timestamp: str
    method: str
    path: str
    query: str
    body: bytes
    api_key: str
    window: int


def BYBIT_PREHASH(p: Prehash) -> bytes:  # noqa: N802 - a named constant that is a function
    """``timestamp + api_key + recv_window + (query | body)`` (Bybit v5)."""
    return f"{p.timestamp}{p.api_key}{p.window}{p.query}".encode("ascii") + p.body


def PATH_PREHASH(p: Prehash) -> bytes:  # noqa: N802
    """``timestamp + METHOD + path[?query] + body`` (OKX v5; KuCoin and Bitget alike)."""
    path = f"{p.path}?{p.query}" if p.query else p.path
    return f"{p.timestamp}{p.method.upper()}{path}".encode("ascii") + p.body


def path_prehash_base64(
    secret: Secret, timestamp: str, method: str, request_path: str, body: bytes
) -> str:
    """``base64(HMAC_SHA256(secret, timestamp + METHOD + requestPath[?query] + body))``: the
    signature OKX v5, Bitget v2 and KuCoin put in a header (a request re-signed by hand in
    tests and tools, given the path as sent)."""
    path, _, query = request_path.partition("?")
    return keys.hmac_sha256_base64(
        secret, PATH_PREHASH(Prehash(timestamp, method, path, query, body, "", 0))
    )


def epoch_ms(now_ms: int) -> str:
    return str(now_ms)


def iso_ms(now_ms: int) -> str:
    """``2020-12-08T09:08:57.715Z`` for the epoch-millisecond instant ``now_ms``."""
    moment = _EPOCH + dt.timedelta(milliseconds=now_ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now_ms % 1000:03d}Z"


def passphrase_header(credential: VenueCredential) -> hc.RedactedHeader:
    """The plaintext passphrase header value (OKX, Bitget): printable ASCII, never echoed."""
    value = keys.require_secret(credential.passphrase, "credential.passphrase").reveal()
    if not _PASSPHRASE.fullmatch(value) or value != value.strip():
        raise InvalidArgument("credential.passphrase", "must be printable ASCII")
    return hc.RedactedHeader(value.decode("ascii"))


def signed_passphrase_header(credential: VenueCredential) -> hc.RedactedHeader:
    """``base64(HMAC_SHA256(secret, passphrase))`` (KuCoin key version 2), never echoed."""
    passphrase_header(credential)  # the same printable-ASCII rule as a plain passphrase
    secret = keys.require_secret(credential.secret, "credential.secret")
    phrase = keys.require_secret(credential.passphrase, "credential.passphrase")
    return hc.RedactedHeader(keys.hmac_sha256_base64(secret, phrase.reveal()))


@dataclass(frozen=True)
class PrehashHeaders:
    timestamp: Callable[[int], str]
    prehash: Callable[[Prehash], bytes]
    encoding: keys.Encoding
    headers: tuple[tuple[str, Part], ...]
    max_age_ms: int | None = None
    expiry_header: tuple[str, frozenset[str]] | None = None  # (name, paths it is sent on)
    demo_header: tuple[str, str] | None = None  # sent when the environment is not LIVE
    mac: Callable[[Secret, bytes], str] | None = None  # instead of keys.sign (see module doc)
    static_headers: tuple[tuple[str, str], ...] = ()  # after the auth headers (KC-API-KEY-VERSION)

    def sign(
        self, call: Call, base: str, credential: VenueCredential, ctx: SigningContext
    ) -> PreparedRequest:
        now, window = sc.now_ms(ctx), sc.recv_window_ms(ctx)
        expire = now + (window if self.max_age_ms is None else min(window, self.max_age_ms))
        parts: dict[Part, str] = {"key": credential.api_key, "window": str(window)}
        if any(part == "passphrase" for _, part in self.headers):
            parts["passphrase"] = passphrase_header(credential)
            keys.require_secret(credential.secret, "credential.secret")
        if any(part == "signed_passphrase" for _, part in self.headers):
            parts["signed_passphrase"] = signed_passphrase_header(credential)
        query = sc.percent_encode(call.params)
        body = hc.compact_json(call.json) if call.json is not None else b""
        parts["timestamp"] = self.timestamp(now)
        prehash = Prehash(parts["timestamp"], call.method, call.path, query, body,
                          credential.api_key, window)  # fmt: skip
        message = self.prehash(prehash)
        if self.mac is not None:
            secret = keys.require_secret(credential.secret, "credential.secret")
            parts["sign"] = self.mac(secret, message)
        else:
            parts["sign"] = keys.sign(credential, message, self.encoding)
        headers = [(name, parts[part]) for name, part in self.headers]
        headers.extend(self.static_headers)
        if call.json is not None:
            headers.append(("Content-Type", "application/json"))
        if self.demo_header is not None and credential.environment is not Environment.LIVE:
            headers.append(self.demo_header)
        if self.expiry_header is not None and call.path in self.expiry_header[1]:
            headers.append((self.expiry_header[0], str(expire)))
        url = f"{base}{call.path}?{query}" if query else f"{base}{call.path}"
        return PreparedRequest(call.method, url, tuple(headers), body, expire_at_ms=expire)
