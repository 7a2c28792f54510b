"""HMAC-SHA512 over a digest of postData, nonce and path: Kraken Futures ``Authent``.

Docs (https://docs.kraken.com/api/docs/guides/futures-rest/, "Authentication")::

    Authent = base64(HMAC_SHA512(base64decode(secret), SHA256(postData + nonce + endpointPath)))

``endpointPath`` is the request path without the ``/derivatives`` prefix (the docs' example
signs ``/api/v3/orderbook`` for ``/derivatives/api/v3/orderbook``). ``postData`` is the
parameter string exactly as sent, **URL-encoded** (the flow Kraken moved ``/derivatives/*`` to
in February 2024, "Upcoming Changes": the parameters are hashed after URL-encoding, not before):
the query string of a GET, the ``application/x-www-form-urlencoded`` body of a POST. Parameters
are kept in the order the venue mapping built them and every byte outside RFC 3986's unreserved
set is percent-encoded; the values the mappings build (decimals, ids, symbols) need no encoding,
so the signed string is the same under the old and the new flow.

Clock and nonce rules: Kraken makes the ``Nonce`` header optional, and a request signed without
one has no freshness at all, so the vault always sends one: ``SigningContext.nonce``, the vault's
per-key, persisted, strictly increasing value (``max(last + 1, now_ms)``); a request without one
is an internal error. Kraken tolerates nonces "out of order for a brief period", so a held-back
request dies once later nonces move past it; the venue has no time-based expiry, so
``expire_at_ms`` is the vault's policy, ``now + recv_window``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vault_server.brokers import _signing_common as sc
from vault_server.brokers.base import PreparedRequest, SigningContext, VenueCredential
from vault_server.brokers.schemes import keys
from vault_server.core.errors import InternalError
from vault_server.core.secret import Secret

if TYPE_CHECKING:
    from vault_server.brokers.spec import Call

PATH_PREFIX = "/derivatives"


def authent(secret_b64: Secret, post_data: str, nonce: str, endpoint_path: str) -> str:
    """The ``Authent`` value (``endpoint_path`` already without ``/derivatives``)."""
    digest = hashlib.sha256((post_data + nonce + endpoint_path).encode("ascii")).digest()
    return keys.hmac_sha512_base64_key(secret_b64, digest)


@dataclass(frozen=True)
class Authent:
    def sign(
        self, call: Call, base: str, credential: VenueCredential, ctx: SigningContext
    ) -> PreparedRequest:
        if ctx.nonce is None or isinstance(ctx.nonce, bool) or ctx.nonce <= 0:
            raise InternalError("Kraken Futures signing needs the vault's per-key nonce")
        if call.json is not None:
            raise InternalError("Kraken Futures takes form parameters, not a JSON body")
        expire_at = sc.now_ms(ctx) + sc.recv_window_ms(ctx)
        nonce, post_data = str(ctx.nonce), sc.percent_encode(call.params)
        secret = keys.require_secret(credential.secret, "credential.secret")
        signature = authent(secret, post_data, nonce, call.path.removeprefix(PATH_PREFIX))
        headers = [("APIKey", credential.api_key), ("Nonce", nonce), ("Authent", signature)]
        url, body = base + call.path, b""
        if call.method == "GET":
            url += f"?{post_data}" if post_data else ""
        else:
            body = post_data.encode("ascii")
            headers.append(("Content-Type", "application/x-www-form-urlencoded"))
        return PreparedRequest(call.method, url, tuple(headers), body, expire_at)
