"""HMAC-SHA512 over the path and a nonce-bound body digest: Kraken Spot (reference §3.1).

::

    API-Sign = base64(HMAC_SHA512(base64decode(secret), path || SHA256(nonce + postdata)))

Every call is a POST with an ``application/x-www-form-urlencoded`` body and no query string.
**Postdata order**: ``nonce`` first, then every other parameter sorted by name (byte order),
values UTF-8 percent-encoded; the official vector (§3.2) is exactly that order.

Clock and nonce rules: the nonce is the vault's (``SigningContext.nonce``, strictly increasing
per key); a request without one is an internal error. The authentication has no time expiry, so
calls marked ``timed`` (orders) carry ``deadline`` inside the signed body (RFC 3339, whole
seconds): ``now + clamp(recv_window, 3 s, 60 s)`` rounded down to the second, always within
Kraken's ``now + 2 s … now + 60 s``; ``expire_at_ms`` is that instant. Other calls expire
(vault policy) at ``now + recv_window``. ``deadline=False`` omits it (only to replay §3.2).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vault_server.brokers import _signing_common as sc
from vault_server.brokers.base import PreparedRequest, SigningContext, VenueCredential
from vault_server.brokers.schemes import keys
from vault_server.core.errors import InternalError

if TYPE_CHECKING:
    from vault_server.brokers.spec import Call


@dataclass(frozen=True)
class HmacNonce:
    deadline: bool = True

    def sign(
        self, call: Call, base: str, credential: VenueCredential, ctx: SigningContext
    ) -> PreparedRequest:
        if ctx.nonce is None or isinstance(ctx.nonce, bool) or ctx.nonce <= 0:
            raise InternalError("Kraken signing needs the vault's per-key nonce")
        now, window = sc.now_ms(ctx), sc.recv_window_ms(ctx)
        params, expire_at = list(call.params), now + window
        if call.timed and self.deadline:
            expire_at = (now + min(max(window, 3000), 60_000)) // 1000 * 1000
            stamp = dt.datetime.fromtimestamp(expire_at // 1000, dt.UTC)
            params.append(("deadline", stamp.strftime("%Y-%m-%dT%H:%M:%SZ")))
        nonce = str(ctx.nonce)
        postdata = sc.percent_encode([("nonce", nonce), *sorted(params)])
        digest = hashlib.sha256((nonce + postdata).encode("ascii")).digest()
        secret = keys.require_secret(credential.secret, "credential.secret")
        signature = keys.hmac_sha512_base64_key(secret, call.path.encode("ascii") + digest)
        headers = (
            ("API-Key", credential.api_key),
            ("API-Sign", signature),
            ("Content-Type", "application/x-www-form-urlencoded"),
        )
        return PreparedRequest(
            "POST", base + call.path, headers, postdata.encode("ascii"), expire_at
        )
