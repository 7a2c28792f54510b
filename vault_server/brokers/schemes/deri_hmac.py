"""Deribit's ``deri-hmac-sha256`` per-request signature (and ``client_signature`` auth).

Deribit "Authentication" (HTTP)::

    RequestData  = UPPER(METHOD) + "\\n" + URI + "\\n" + RequestBody + "\\n"
    StringToSign = Timestamp + "\\n" + Nonce + "\\n" + RequestData
    Signature    = hex(HMAC_SHA256(ClientSecret, StringToSign))
    Authorization: deri-hmac-sha256 id=ClientId,ts=Timestamp,sig=Signature,nonce=Nonce

URI is the path with its ``?query``. Every call here is a GET with its parameters in the query
and an empty body (as ccxt sends them). The nonce is random per request
(``SigningContext.random_hex``), the timestamp epoch milliseconds; the timestamp "is valid for
60 seconds since generation, after that time any request with an old timestamp will be rejected"
and the nonce is "single usage" (docs.deribit.com/articles/authentication, parameter tables of
"Client Signature" and "Deribit Signature Credentials (HTTP REST)"), so
``expire_at_ms = now + min(recv_window, 60000)``.

``public/auth`` with ``grant_type=client_signature`` signs ``Timestamp + "\\n" + Nonce + "\\n" +
Data`` (the same :func:`string_to_sign`): the vault uses it only as the permission query (its
answer carries the key's ``scope``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vault_server.brokers import _signing_common as sc
from vault_server.brokers.base import PreparedRequest, SigningContext, VenueCredential
from vault_server.brokers.schemes import keys
from vault_server.core.errors import InternalError, InvalidArgument

if TYPE_CHECKING:
    from vault_server.brokers.spec import Call

_NONCE = re.compile(r"[0-9a-f]{8,64}")


def string_to_sign(timestamp: str, nonce: str, data: str) -> bytes:
    return f"{timestamp}\n{nonce}\n{data}".encode()


def request_data(method: str, uri: str, body: bytes) -> str:
    return f"{method.upper()}\n{uri}\n{body.decode('utf-8')}\n"


@dataclass(frozen=True)
class DeriHmac:
    auth_path: str  # public/auth: client_signature instead of the Authorization header
    max_age_ms: int = 60_000

    def sign(
        self, call: Call, base: str, credential: VenueCredential, ctx: SigningContext
    ) -> PreparedRequest:
        now, window = sc.now_ms(ctx), sc.recv_window_ms(ctx)
        nonce = ctx.random_hex
        if not _NONCE.fullmatch(nonce):
            raise InternalError("signing context carries no valid random nonce")
        if call.method != "GET" or call.json is not None:
            raise InvalidArgument("order", "Deribit calls are sent as GET with query parameters")
        secret = keys.require_secret(credential.secret, "credential.secret")
        ts, expire = str(now), now + min(window, self.max_age_ms)
        if call.path == self.auth_path:
            sig = keys.hmac_sha256_hex(secret, string_to_sign(ts, nonce, ""))
            params = (("grant_type", "client_signature"), ("client_id", credential.api_key),
                      ("timestamp", ts), ("signature", sig), ("nonce", nonce),
                      ("data", ""))  # fmt: skip
            query = sc.percent_encode(params)
            return PreparedRequest("GET", f"{base}{call.path}?{query}", (), b"", expire)
        query = sc.percent_encode(call.params)
        uri = f"{call.path}?{query}" if query else call.path
        sig = keys.hmac_sha256_hex(secret, string_to_sign(ts, nonce, request_data("GET", uri, b"")))
        value = f"deri-hmac-sha256 id={credential.api_key},ts={ts},sig={sig},nonce={nonce}"
        return PreparedRequest("GET", f"{base}{uri}", (("Authorization", value),), b"", expire)
