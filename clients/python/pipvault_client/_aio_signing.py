"""Asyncio SigningService methods (data plane). None of them is ever retried."""

from __future__ import annotations

from typing import Unpack

from pipsync.vault.v1 import signing_service_pb2 as sign_svc
from pipsync.vault.v1 import trading_pb2

from pipvault_client import _requests as build
from pipvault_client import _rpc
from pipvault_client._aio_core import AsyncTransport
from pipvault_client._base import CallOptions
from pipvault_client._requests import DurationLike


class SigningMethods(AsyncTransport):
    """Routing contexts, detached signing and proxy execution."""

    async def begin_routing(
        self,
        credential: str,
        strategy_id: str,
        reason: str = "",
        ttl: DurationLike | None = None,
        **options: Unpack[CallOptions],
    ) -> sign_svc.RoutingContext:
        """Opens a routing context on ``credential`` for ``strategy_id``. ``reason`` is
        required."""
        request = build.begin_routing(credential, strategy_id, reason, ttl)
        return (await self._unary(_rpc.BEGIN_ROUTING, request, options, reason)).routing_context

    async def renew_routing(
        self,
        name: str,
        reason: str = "",
        ttl: DurationLike | None = None,
        **options: Unpack[CallOptions],
    ) -> sign_svc.RoutingContext:
        """Extends a routing context. ``reason`` is required."""
        request = build.renew_routing(name, reason, ttl)
        return (await self._unary(_rpc.RENEW_ROUTING, request, options, reason)).routing_context

    async def end_routing(
        self, name: str, reason: str = "", **options: Unpack[CallOptions]
    ) -> sign_svc.RoutingContext:
        """Ends a routing context. ``reason`` is required."""
        request = sign_svc.EndRoutingRequest(name=name, reason=reason)
        return (await self._unary(_rpc.END_ROUTING, request, options, reason)).routing_context

    async def sign_order(
        self,
        routing_context: str,
        order: trading_pb2.Order,
        reason: str = "",
        credential: str = "",
        **options: Unpack[CallOptions],
    ) -> sign_svc.SignOrderResponse:
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
        return await self._unary(_rpc.SIGN_ORDER, request, options, reason)

    async def execute_order(
        self,
        routing_context: str,
        order: trading_pb2.Order,
        reason: str = "",
        credential: str = "",
        **options: Unpack[CallOptions],
    ) -> sign_svc.ExecuteOrderResponse:
        """Proxy mode: the vault sends the order and returns the venue's answer. ``reason`` is
        required. Order sizes and ``credential`` (optional) as in ``sign_order``."""
        request = sign_svc.ExecuteOrderRequest(
            routing_context=routing_context, order=order, reason=reason, credential=credential
        )
        return await self._unary(_rpc.EXECUTE_ORDER, request, options, reason)
