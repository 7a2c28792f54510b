"""IG REST Trading API (``api.ig.com/gateway/deal``, demo ``demo-api.ig.com``): custody only.

IG has no request signing. A client logs in with ``POST /session`` using the account
**username and password** (optionally RSA-encrypted with ``GET /session/encryptionKey``) plus the
``X-IG-API-KEY``, and then sends the returned ``CST`` / ``X-SECURITY-TOKEN`` (v2) or an OAuth
access token (v3) on every call (reference §11.1). The vault can therefore only ever *proxy* IG,
and doing so needs a session manager (login, token cache, refresh, re-login on expiry, the
``_method: DELETE`` override for closing positions) that this build does not have yet.

Until then IG credentials can be stored and rotated (custody), but:

* ``build`` raises ``OperationNotSupported``: the session login flow is not implemented, and
  handing out the session tokens would expose full-scope credentials;
* ``check_endpoint`` refuses every endpoint;
* ``permission_request`` returns None: IG has a single tier and no permission API (§11.3).
"""

from __future__ import annotations

from vault_server.brokers import _http_common as hc
from vault_server.brokers.base import (
    Environment,
    KeyAlgorithm,
    OrderSpec,
    PermissionReport,
    PreparedRequest,
    SigningContext,
    Venue,
    VenueCredential,
    deny_endpoint,
)
from vault_server.core.errors import OperationNotSupported

URLS = {
    Environment.LIVE: "https://api.ig.com/gateway/deal",
    Environment.PAPER: "https://demo-api.ig.com/gateway/deal",
    Environment.TESTNET: "https://demo-api.ig.com/gateway/deal",
}


class IgAdapter:
    """IG: credentials are held in custody; no request is built yet."""

    venue = Venue.IG
    proxy_only = True
    single_permission_tier = True
    needs_nonce = False
    algorithms = frozenset({KeyAlgorithm.SESSION_LOGIN})
    generatable: frozenset[KeyAlgorithm] = frozenset()
    scope_vocabulary = hc.single_tier_vocabulary()

    def __repr__(self) -> str:
        return "IgAdapter()"

    def default_base_url(self, environment: Environment) -> str:
        return URLS[environment]

    def check_endpoint(self, method: str, path: str) -> None:
        raise deny_endpoint(method, path)  # nothing is sent to IG until sessions exist

    def build(
        self, order: OrderSpec, credential: VenueCredential, ctx: SigningContext
    ) -> PreparedRequest:
        raise OperationNotSupported(
            "IG credentials are held in custody only: the session login flow is not implemented",
            metadata={"venue": self.venue.value, "operation": order.operation.value},
        )

    def permission_request(
        self, credential: VenueCredential, ctx: SigningContext
    ) -> PreparedRequest | None:
        return None  # single tier, no permission API

    def parse_permissions(self, status: int, body: bytes) -> PermissionReport:
        raise OperationNotSupported(
            "IG has no permission query", metadata={"venue": self.venue.value}
        )


ADAPTER = IgAdapter()
