"""HMAC (or Ed25519/RSA) over the percent-encoded query: Binance's scheme (reference §1.2).

Signed payload: the call's parameters, then ``recvWindow`` and ``timestamp``, percent-encoded
(RFC 3986 unreserved characters kept, UTF-8 otherwise), with ``signature`` appended as the last
parameter; the key id goes in ``key_header``. HMAC-SHA256 keys sign to lowercase hex; Ed25519
and RSA (PKCS#1 v1.5, SHA-256) keys to base64, then percent-encoded.

Placement: every parameter goes in the query string and the body is empty, for every method
(the form of the official final request, §1.3). With ``body_params`` POST/PUT parameters go in
an ``application/x-www-form-urlencoded`` body instead (USD-M Example 2); the signed bytes are
identical either way. Mixed placement (§2.3 Example 3) is never produced.

Freshness: ``recvWindow`` is the context's window (capped at ``max_window_ms``), and the venue
refuses the request after ``timestamp + recvWindow``, which is ``expire_at_ms``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from vault_server.brokers import _signing_common as sc
from vault_server.brokers.base import KeyAlgorithm, PreparedRequest, SigningContext, VenueCredential
from vault_server.brokers.schemes import keys

if TYPE_CHECKING:
    from vault_server.brokers.spec import Call


@dataclass(frozen=True)
class HmacQuery:
    key_header: str
    body_params: bool = False
    max_window_ms: int = sc.MAX_RECV_WINDOW_MS

    def sign(
        self, call: Call, base: str, credential: VenueCredential, ctx: SigningContext
    ) -> PreparedRequest:
        window, now = sc.recv_window_ms(ctx, self.max_window_ms), sc.now_ms(ctx)
        payload = sc.percent_encode(
            [*call.params, ("recvWindow", str(window)), ("timestamp", str(now))]
        )
        signature = keys.sign(credential, payload.encode("ascii"), "hex")
        if credential.algorithm is not KeyAlgorithm.HMAC_SHA256:
            signature = quote(signature, safe="")
        signed = f"{payload}&signature={signature}"
        headers = [(self.key_header, credential.api_key)]
        if self.body_params and call.method in ("POST", "PUT"):
            headers.append(("Content-Type", "application/x-www-form-urlencoded"))
            url, body = f"{base}{call.path}", signed.encode("ascii")
        else:
            url, body = f"{base}{call.path}?{signed}", b""
        return PreparedRequest(call.method, url, tuple(headers), body, expire_at_ms=now + window)
