"""A venue declared once, as data, and the one adapter built from it.

A :class:`VenueSpec` holds everything that makes a venue what it is — its environments and base
URLs, endpoint allow-list and fund-moving block-list, scope vocabulary (withdraw/transfer tokens
included, so they are refused by name), how to ask it for a key's permissions and read the
answer, the key types it accepts and the vault may generate, its signing scheme with that
scheme's clock and nonce rules, and its order mapping (the one part that is truly its own: how
an ``OrderSpec`` becomes its method, path and fields, with its order-unit rules). The
:class:`SpecAdapter` implements the ``VenueAdapter`` protocol the services use, the same way for
every venue::

    build:  credential check -> size unit and protective-order checks -> order mapping
            -> endpoint check -> base URL -> scheme.sign

A new venue is a spec, a mapping and, only if its signature is new, a scheme
(``brokers/schemes``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vault_server.brokers import _signing_common as sc
from vault_server.brokers.base import (
    Environment,
    KeyAlgorithm,
    Operation,
    OrderSpec,
    PermissionReport,
    PreparedRequest,
    Scope,
    SigningContext,
    SizeUnit,
    Venue,
    VenueCredential,
    normalize_scope_token,
)
from vault_server.brokers.endpoints import Endpoints
from vault_server.brokers.lifecycle import Lifecycle, SessionProtocol
from vault_server.brokers.schemes import Scheme
from vault_server.core.errors import InvalidArgument, OperationNotSupported

Params = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Call:
    """One request as the order mapping describes it, before the scheme places and signs it.

    ``params`` are the ordered string parameters the scheme places (query string, or form body
    where the scheme says so); ``json`` is a JSON body (sent compact, keys in the order built).
    ``timed`` marks calls that carry a venue-side deadline (Kraken AddOrder/AmendOrder).
    """

    method: str
    path: str
    params: Params = ()
    json: Mapping[str, Any] | None = None
    timed: bool = False

    @classmethod
    def query_or_json(cls, method: str, path: str, fields: Mapping[str, Any]) -> Call:
        """GET: ``fields`` as query parameters; any other method: as the JSON body."""
        if method == "GET":
            return cls(method, path, params=tuple((k, str(v)) for k, v in fields.items()))
        return cls(method, path, json=dict(fields))


Mapping_ = Callable[[OrderSpec, VenueCredential], Call]
_POSITION_OPERATIONS = frozenset(
    {Operation.CLOSE_POSITION, Operation.AMEND_POSITION, Operation.QUERY_POSITIONS}
)


@dataclass(frozen=True)
class Permissions:
    """How to ask the venue which permissions a key has, and how to read the answer."""

    call: Call
    parse: Callable[[int, bytes, Mapping[str, frozenset[Scope]]], PermissionReport]
    host: str | None = None  # a fixed host instead of the environment's (Binance: Spot's)
    environments: frozenset[Environment] | None = None  # where the query exists (None: all)


def vocabulary(
    *,
    read: tuple[str, ...] = (),
    trade: tuple[str, ...] = (),
    withdraw: tuple[str, ...] = (),
    transfer: tuple[str, ...] = (),
    combined: Mapping[str, frozenset[Scope]] | None = None,
) -> Mapping[str, frozenset[Scope]]:
    """A scope vocabulary: the venue's tokens, as it spells them, keyed by their folded form.

    List the fund-moving tokens too (``withdraw``, ``transfer``): onboarding then refuses them
    by name, and a permission answer that reports them counts them. ``combined`` maps tokens
    that grant more than one scope.
    """
    tokens: dict[str, frozenset[Scope]] = {}
    for names, scope in ((read, Scope.READ), (trade, Scope.TRADE),
                         (withdraw, Scope.WITHDRAW), (transfer, Scope.TRANSFER)):  # fmt: skip
        tokens |= dict.fromkeys(names, frozenset({scope}))
    tokens |= combined or {}
    return {normalize_scope_token(token): scopes for token, scopes in tokens.items()}


def live_and_practice(live: str, practice: str) -> Mapping[Environment, str]:
    """Base URLs of a venue with one practice host that serves both PAPER and TESTNET."""
    return {Environment.LIVE: live, Environment.PAPER: practice, Environment.TESTNET: practice}


@dataclass(frozen=True)
class VenueSpec:
    venue: Venue
    label: str  # the venue's name in messages ("Kraken Spot")
    urls: Mapping[Environment, str]
    endpoints: Endpoints
    scope_vocabulary: Mapping[str, frozenset[Scope]]
    algorithms: frozenset[KeyAlgorithm]
    scheme: Scheme
    mapping: Mapping_
    generatable: frozenset[KeyAlgorithm] = frozenset()
    permissions: Permissions | None = None
    proxy_only: bool = False  # the scheme would expose the secret, or not bind the order
    single_permission_tier: bool = False
    needs_nonce: bool = False  # SigningContext.nonce must be set (vault-owned, per key)
    options: Mapping[str, object] = field(default_factory=dict)  # shown in repr (variants)
    missing_environment: str = ""  # the refusal when ``urls`` lacks an environment
    # Session and OAuth venues: the login/refresh protocol whose tokens authenticate each
    # proxied request (the ``scheme`` then adds only the venue's fixed headers).
    session: SessionProtocol | None = None
    # What ``OrderSpec.quantity`` counts at this venue (README "Venues").
    size_unit: SizeUnit = SizeUnit.BASE_UNITS
    # Venues whose host depends on the credential (MetaApi regions): the origins egress may
    # also send to when no base URL override is configured.
    origin_pattern: re.Pattern[str] | None = None
    # The mapping takes stop loss / take profit and the position operations (forex/CFD
    # venues). False: ``SpecAdapter.build`` refuses them before the mapping runs, so a venue
    # written before protective orders existed can never silently drop a stop loss.
    protective_orders: bool = False
    # The venue deals a position's close (or its protective orders) against the position's
    # side, which the caller states (IG, Match-Trader, DXtrade); elsewhere a side on a position
    # operation would be ignored, so it is refused.
    position_side: bool = False


class SpecAdapter:
    """The ``VenueAdapter`` of a :class:`VenueSpec`."""

    def __init__(self, spec: VenueSpec) -> None:
        self.spec = spec
        self.venue = spec.venue
        self.proxy_only = spec.proxy_only
        self.single_permission_tier = spec.single_permission_tier
        self.needs_nonce = spec.needs_nonce
        self.algorithms = spec.algorithms
        self.generatable = spec.generatable
        self.scope_vocabulary = spec.scope_vocabulary
        self.session = spec.session
        self.lifecycle = spec.session.lifecycle if spec.session is not None else Lifecycle.STATIC
        self.size_unit = spec.size_unit
        self.origin_pattern = spec.origin_pattern
        self.protective_orders = spec.protective_orders

    def __repr__(self) -> str:
        options = "".join(f", {k}={v!r}" for k, v in self.spec.options.items())
        return f"SpecAdapter({self.venue.value}{options})"

    def variant(self, **changes: Any) -> SpecAdapter:
        """The same venue with some spec fields changed (strict Coinbase, form-body Binance)."""
        return SpecAdapter(dataclasses.replace(self.spec, **changes))

    def default_base_url(self, environment: Environment) -> str:
        url = self.spec.urls.get(environment)
        if url is None:
            raise OperationNotSupported(
                self.spec.missing_environment
                or f"{self.spec.label} has no {environment.value} environment",
                metadata={"venue": self.venue.value, "environment": environment.value},
            )
        return url

    def check_endpoint(self, method: str, path: str) -> None:
        self.spec.endpoints.check(method, path)

    def build(
        self, order: OrderSpec, credential: VenueCredential, ctx: SigningContext
    ) -> PreparedRequest:
        sc.check_credential(self.venue, self.algorithms, credential)
        if order.size_unit is not None and order.size_unit is not self.spec.size_unit:
            raise InvalidArgument(
                "order.size_unit",
                f"{self.spec.label} counts quantity in {self.spec.size_unit.value}",
            )
        self._check_protective(order)
        call = self.spec.mapping(order, credential)
        return self._sign(call, credential, ctx)

    def _check_protective(self, order: OrderSpec) -> None:
        """Refuse what a venue without ``protective_orders`` would drop: the position operations
        (``OPERATION_NOT_SUPPORTED``) and a stop loss, take profit or position id
        (``INVALID_ARGUMENT`` naming the field)."""
        if self.spec.protective_orders:
            position_ops = (Operation.CLOSE_POSITION, Operation.AMEND_POSITION)
            if order.operation in position_ops and order.side and not self.spec.position_side:
                raise InvalidArgument(
                    "order.side", f"{self.spec.label} acts on a position by its id alone"
                )
            return
        if order.operation in _POSITION_OPERATIONS:
            raise OperationNotSupported(
                f"{self.spec.label} has no position operations",
                metadata={"venue": self.venue.value, "operation": order.operation.value},
            )
        for name in ("stop_loss", "take_profit", "position_id"):
            if getattr(order, name) is not None:
                raise InvalidArgument(
                    f"order.{name}",
                    f"{self.spec.label} takes no stop loss, take profit or position",
                )

    def permission_base_url(self, environment: Environment) -> str:
        """Where ``permission_request`` goes (the egress allow-list checks this host)."""
        permissions = self.spec.permissions
        if permissions is not None and permissions.host is not None:
            return permissions.host
        return self.default_base_url(environment)

    def permission_request(
        self, credential: VenueCredential, ctx: SigningContext
    ) -> PreparedRequest | None:
        permissions = self.spec.permissions
        if permissions is None:
            return None  # the venue has no API that reports a key's permissions
        sc.check_credential(self.venue, self.algorithms, credential)
        if (
            ctx.base_url is None
            and permissions.environments is not None
            and credential.environment not in permissions.environments
        ):
            return None
        return self._sign(permissions.call, credential, ctx, host=permissions.host)

    def parse_permissions(self, status: int, body: bytes) -> PermissionReport:
        permissions = self.spec.permissions
        if permissions is None:
            raise OperationNotSupported(
                f"{self.spec.label} has no permission query", metadata={"venue": self.venue.value}
            )
        return permissions.parse(status, body, self.scope_vocabulary)

    def _sign(
        self,
        call: Call,
        credential: VenueCredential,
        ctx: SigningContext,
        *,
        host: str | None = None,
    ) -> PreparedRequest:
        self.check_endpoint(call.method, call.path)
        if ctx.base_url:  # configured: a venue whose brokers host it themselves has no default
            base = sc.base_url(ctx, "")
        else:
            base = sc.base_url(ctx, host or self.default_base_url(credential.environment))
        return self.spec.scheme.sign(call, base, credential, ctx)
