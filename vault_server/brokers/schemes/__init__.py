"""Shared signing schemes: a venue spec names one, with its parameters.

A scheme turns a mapped :class:`~vault_server.brokers.spec.Call` into the exact
:class:`~vault_server.brokers.base.PreparedRequest` the venue expects: where the parameters go
(query, form or JSON body), what is signed and how, which headers carry the key, signature,
timestamp or secret, and when the request expires. Schemes are pure: time, nonces and random
bytes come from the ``SigningContext``.

=====================  ==========================================================  ===========
scheme                 what is signed                                              venues
=====================  ==========================================================  ===========
``HmacQuery``          the percent-encoded parameters + recvWindow + timestamp     Binance
``PrehashHeaders``     a prehash string of timestamp, method, path, body (...),    Bybit, OKX,
                       signature and timestamp in headers, hex or base64           Gate, KuCoin
``HmacNonce``          path + SHA-256(nonce + form body), base64-keyed HMAC-SHA512  Kraken Spot
``Authent``            SHA-256(postData + nonce + path), base64-keyed HMAC-SHA512   Kraken Futures
``DeriHmac``           ts + nonce + METHOD + URI + body (newline-separated), hex    Deribit
                       HMAC-SHA256 in ``Authorization: deri-hmac-sha256``
``eip712_agent``       keccak(msgpack(action) + nonce + vault + expiry) as an       Hyperliquid
                       EIP-712 phantom agent, secp256k1 (``L1Action`` scheme)
``CdpJwt``             a per-request ES256/EdDSA JWT binding method and path       Coinbase
``StaticHeaders``      nothing: the secret itself is a header (proxy mode only)    OANDA, Alpaca
=====================  ==========================================================  ===========
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from vault_server.brokers.base import PreparedRequest, SigningContext, VenueCredential

if TYPE_CHECKING:
    from vault_server.brokers.spec import Call


class Scheme(Protocol):
    def sign(
        self, call: Call, base: str, credential: VenueCredential, ctx: SigningContext
    ) -> PreparedRequest:
        """The request for ``call`` against ``base`` (scheme and host, no trailing slash)."""
        ...
