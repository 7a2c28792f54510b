"""SigningService methods (data plane), written once for both clients. None is ever retried."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Unpack

from pipsync.vault.v1 import signing_service_pb2 as sign_svc
from pipsync.vault.v1 import trading_pb2

from pipvault_client import _requests as build
from pipvault_client import _rpc
from pipvault_client._base import CallOptions
from pipvault_client._calls import Unary, whole
from pipvault_client._errors import VaultClientError, error_from_status
from pipvault_client._methods import unary_rpc
from pipvault_client._requests import DurationLike


class SigningMethods:
    """Routing contexts, detached signing and proxy execution."""

    @unary_rpc
    def begin_routing(
        self,
        credential: str,
        strategy_id: str,
        reason: str = "",
        ttl: DurationLike | None = None,
        **options: Unpack[CallOptions],
    ) -> Unary[sign_svc.RoutingContext]:
        """Opens a routing context on ``credential`` for ``strategy_id``. ``reason`` is
        required."""
        request = sign_svc.BeginRoutingRequest(
            credential=credential,
            strategy_id=strategy_id,
            ttl=build.duration(ttl, "ttl"),
            reason=reason,
        )
        return Unary(_rpc.BEGIN_ROUTING, request, _routing_context, options, reason)

    @unary_rpc
    def batch_begin_routing(
        self,
        requests: Sequence[sign_svc.BeginRoutingRequest],
        reason: str = "",
        **options: Unpack[CallOptions],
    ) -> Unary[list[RoutingResult]]:
        """Opens many routing contexts in one round trip (``BatchBeginRouting``), e.g. when
        followers subscribe to a signal. Each request is a ``BeginRoutingRequest`` (its own
        ``reason``, or ``reason`` here for the call). Returns one result per request, in order:
        the ``RoutingContext``, or the :class:`VaultClientError` that item failed with."""
        _check_batch(requests, reason, "BatchBeginRouting")
        request = sign_svc.BatchBeginRoutingRequest(requests=requests)
        return Unary(_rpc.BATCH_BEGIN_ROUTING, request, _routing_results, options, reason)

    @unary_rpc
    def renew_routing(
        self,
        name: str,
        reason: str = "",
        ttl: DurationLike | None = None,
        **options: Unpack[CallOptions],
    ) -> Unary[sign_svc.RoutingContext]:
        """Extends a routing context. ``reason`` is required."""
        request = sign_svc.RenewRoutingRequest(
            name=name, ttl=build.duration(ttl, "ttl"), reason=reason
        )
        return Unary(_rpc.RENEW_ROUTING, request, _routing_context, options, reason)

    @unary_rpc
    def end_routing(
        self, name: str, reason: str = "", **options: Unpack[CallOptions]
    ) -> Unary[sign_svc.RoutingContext]:
        """Ends a routing context. ``reason`` is required."""
        request = sign_svc.EndRoutingRequest(name=name, reason=reason)
        return Unary(_rpc.END_ROUTING, request, _routing_context, options, reason)

    @unary_rpc
    def sign_order(
        self,
        routing_context: str,
        order: trading_pb2.Order,
        reason: str = "",
        credential: str = "",
        **options: Unpack[CallOptions],
    ) -> Unary[sign_svc.SignOrderResponse]:
        """Detached mode: a signed request to send before its ``expire_time``. ``reason`` is
        required.

        A new order carries exactly one size: ``order.quantity`` in base units, or
        ``order.quote_quantity`` in quote units where the venue offers a quote-sized market order
        (otherwise ``InvalidArgumentError``, field ``order.quote_quantity``).
        ``credential`` (optional) names the credential meant: it must match the routing
        context's, and without a context it lets the refusal and its page name it."""
        request = sign_svc.SignOrderRequest(
            routing_context=routing_context, order=order, reason=reason, credential=credential
        )
        return Unary(_rpc.SIGN_ORDER, request, whole, options, reason)

    @unary_rpc
    def sign_orders(
        self,
        requests: Sequence[sign_svc.SignOrderRequest],
        reason: str = "",
        **options: Unpack[CallOptions],
    ) -> Unary[list[SignOrderResult]]:
        """Fan-out: many ``sign_order`` calls in one round trip (``BatchSignOrders``).

        Each request is a ``SignOrderRequest`` (routing context, order, optional credential and
        its own ``reason``; ``reason`` here is the call's, used by items without one). Returns
        one result per request, in order: its ``SignOrderResponse`` (the audit event is durable),
        or the :class:`VaultClientError` that item failed with - items fail alone, so check each.
        At most the server's ``signing.max_batch_items`` requests (default 1000)."""
        _check_batch(requests, reason, "BatchSignOrders")
        request = sign_svc.BatchSignOrdersRequest(requests=requests)
        return Unary(_rpc.BATCH_SIGN_ORDERS, request, _batch_results, options, reason)

    @unary_rpc
    def execute_order(
        self,
        routing_context: str,
        order: trading_pb2.Order,
        reason: str = "",
        credential: str = "",
        **options: Unpack[CallOptions],
    ) -> Unary[sign_svc.ExecuteOrderResponse]:
        """Proxy mode: the vault sends the order and returns the venue's answer. ``reason`` is
        required. Order sizes and ``credential`` (optional) as in ``sign_order``."""
        request = sign_svc.ExecuteOrderRequest(
            routing_context=routing_context, order=order, reason=reason, credential=credential
        )
        return Unary(_rpc.EXECUTE_ORDER, request, whole, options, reason)


_RoutingResponse = (
    sign_svc.BeginRoutingResponse | sign_svc.RenewRoutingResponse | sign_svc.EndRoutingResponse
)


def _routing_context(response: _RoutingResponse) -> sign_svc.RoutingContext:
    return response.routing_context


SignOrderResult = sign_svc.SignOrderResponse | VaultClientError


def _batch_results(response: sign_svc.BatchSignOrdersResponse) -> list[SignOrderResult]:
    method = _rpc.BATCH_SIGN_ORDERS.path
    return [
        r.response if r.WhichOneof("result") == "response"
        else error_from_status(r.error, method=method)
        for r in response.results
    ]  # fmt: skip


RoutingResult = sign_svc.RoutingContext | VaultClientError


def _check_batch(
    requests: Sequence[sign_svc.SignOrderRequest] | Sequence[sign_svc.BeginRoutingRequest],
    reason: str,
    method: str,
) -> None:
    if not requests:
        raise ValueError(f"{method} needs at least one request")
    if not reason.strip() and any(not r.reason.strip() for r in requests):
        raise ValueError(f"{method} requires a reason (the call's or each item's)")


def _routing_results(response: sign_svc.BatchBeginRoutingResponse) -> list[RoutingResult]:
    method = _rpc.BATCH_BEGIN_ROUTING.path
    return [
        r.routing_context if r.WhichOneof("result") == "routing_context"
        else error_from_status(r.error, method=method)
        for r in response.results
    ]  # fmt: skip
