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
    KeyAlgorithm,
    OrderSpec,
    PreparedRequest,
    SigningContext,
    Venue,
    VenueCredential,
)
from vault_server.brokers.endpoints import Endpoints
from vault_server.brokers.schemes.static_headers import StaticHeaders
from vault_server.brokers.spec import Call, SpecAdapter, VenueSpec, live_and_practice
from vault_server.core.errors import OperationNotSupported


def _not_yet(order: OrderSpec, credential: VenueCredential) -> Call:
    raise OperationNotSupported(
        "IG credentials are held in custody only: the session login flow is not implemented",
        metadata={"venue": Venue.IG.value, "operation": order.operation.value},
    )


class CustodyOnlyAdapter(SpecAdapter):
    """A venue whose credentials are stored and rotated, but for which nothing is built yet."""

    def build(
        self, order: OrderSpec, credential: VenueCredential, ctx: SigningContext
    ) -> PreparedRequest:
        self.spec.mapping(order, credential)  # raises: say why before looking at the credential
        raise AssertionError("unreachable")  # pragma: no cover


SPEC = VenueSpec(
    venue=Venue.IG,
    label="IG",
    urls=live_and_practice(
        "https://api.ig.com/gateway/deal", "https://demo-api.ig.com/gateway/deal"
    ),
    endpoints=Endpoints(),  # nothing is sent to IG until sessions exist
    scope_vocabulary=hc.single_tier_vocabulary(),
    algorithms=frozenset({KeyAlgorithm.SESSION_LOGIN}),
    scheme=StaticHeaders(headers=()),  # never reached: a session scheme comes with the login flow
    mapping=_not_yet,
    proxy_only=True,
    single_permission_tier=True,
)
ADAPTER = CustodyOnlyAdapter(SPEC)
