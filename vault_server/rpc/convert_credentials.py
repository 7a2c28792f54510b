"""Credential views <-> API messages. Enum tables are the one place proto and domain names meet."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from google.protobuf import duration_pb2
from pipsync.vault.v1 import credential_pb2, trading_pb2
from pipsync.vault.v1 import credential_service_pb2 as cpb

from vault_server.brokers.base import Environment, KeyAlgorithm, Scope, Venue
from vault_server.core.errors import InvalidArgument
from vault_server.core.secret import Secret
from vault_server.custody import CredentialView, MaterialInput, VersionView
from vault_server.domain import etag, version_name
from vault_server.orders import OrderPolicy
from vault_server.rpc import wellknown as wk
from vault_server.rpc.convert import timestamp
from vault_server.sessions import ApplicationView

T = TypeVar("T")

BROKERS = {
    trading_pb2.BROKER_BINANCE_SPOT: Venue.BINANCE_SPOT,
    trading_pb2.BROKER_BINANCE_USDM: Venue.BINANCE_USDM,
    trading_pb2.BROKER_KRAKEN_SPOT: Venue.KRAKEN_SPOT,
    trading_pb2.BROKER_BYBIT: Venue.BYBIT,
    trading_pb2.BROKER_OKX: Venue.OKX,
    trading_pb2.BROKER_COINBASE_ADVANCED: Venue.COINBASE_ADVANCED,
    trading_pb2.BROKER_OANDA: Venue.OANDA,
    trading_pb2.BROKER_ALPACA: Venue.ALPACA,
    trading_pb2.BROKER_IG: Venue.IG,
    trading_pb2.BROKER_DERIBIT: Venue.DERIBIT,
    trading_pb2.BROKER_KUCOIN: Venue.KUCOIN,
    trading_pb2.BROKER_BITGET: Venue.BITGET,
    trading_pb2.BROKER_GATE: Venue.GATE,
    trading_pb2.BROKER_KRAKEN_FUTURES: Venue.KRAKEN_FUTURES,
    trading_pb2.BROKER_HYPERLIQUID: Venue.HYPERLIQUID,
    trading_pb2.BROKER_CTRADER: Venue.CTRADER,
    trading_pb2.BROKER_TRADELOCKER: Venue.TRADELOCKER,
    trading_pb2.BROKER_MATCH_TRADER: Venue.MATCH_TRADER,
    trading_pb2.BROKER_DXTRADE: Venue.DXTRADE,
    trading_pb2.BROKER_METAAPI: Venue.METAAPI,
}
ENVIRONMENTS = {
    trading_pb2.ENVIRONMENT_LIVE: Environment.LIVE,
    trading_pb2.ENVIRONMENT_PAPER: Environment.PAPER,
    trading_pb2.ENVIRONMENT_TESTNET: Environment.TESTNET,
}
ALGORITHMS = {
    trading_pb2.KEY_ALGORITHM_HMAC_SHA256: KeyAlgorithm.HMAC_SHA256,
    trading_pb2.KEY_ALGORITHM_HMAC_SHA512: KeyAlgorithm.HMAC_SHA512,
    trading_pb2.KEY_ALGORITHM_ED25519: KeyAlgorithm.ED25519,
    trading_pb2.KEY_ALGORITHM_RSA: KeyAlgorithm.RSA,
    trading_pb2.KEY_ALGORITHM_ECDSA_P256: KeyAlgorithm.ECDSA_P256,
    trading_pb2.KEY_ALGORITHM_BEARER: KeyAlgorithm.BEARER,
    trading_pb2.KEY_ALGORITHM_STATIC_HEADERS: KeyAlgorithm.STATIC_HEADERS,
    trading_pb2.KEY_ALGORITHM_SESSION_LOGIN: KeyAlgorithm.SESSION_LOGIN,
    trading_pb2.KEY_ALGORITHM_SECP256K1: KeyAlgorithm.SECP256K1,
    trading_pb2.KEY_ALGORITHM_OAUTH_CONSENT: KeyAlgorithm.OAUTH_CONSENT,
}
SCOPES = {
    Scope.READ: trading_pb2.SCOPE_READ,
    Scope.TRADE: trading_pb2.SCOPE_TRADE,
    Scope.WITHDRAW: trading_pb2.SCOPE_WITHDRAW,
    Scope.TRANSFER: trading_pb2.SCOPE_TRANSFER,
}
SIDES = {trading_pb2.ORDER_SIDE_BUY: "buy", trading_pb2.ORDER_SIDE_SELL: "sell"}
ORDER_TYPES = {
    trading_pb2.ORDER_TYPE_MARKET: "market",
    trading_pb2.ORDER_TYPE_LIMIT: "limit",
    trading_pb2.ORDER_TYPE_STOP_LOSS: "stop_loss",
    trading_pb2.ORDER_TYPE_STOP_LIMIT: "stop_limit",
    trading_pb2.ORDER_TYPE_TAKE_PROFIT: "take_profit",
    trading_pb2.ORDER_TYPE_TAKE_PROFIT_LIMIT: "take_profit_limit",
}
_CRED_STATE = {
    "pending": credential_pb2.Credential.STATE_PENDING,
    "active": credential_pb2.Credential.STATE_ACTIVE,
    "quarantined": credential_pb2.Credential.STATE_QUARANTINED,
    "revoked": credential_pb2.Credential.STATE_REVOKED,
}
_VERSION_STATE = {
    "pending": credential_pb2.CredentialVersion.STATE_PENDING,
    "current": credential_pb2.CredentialVersion.STATE_CURRENT,
    "previous": credential_pb2.CredentialVersion.STATE_PREVIOUS,
    "destroyed": credential_pb2.CredentialVersion.STATE_DESTROYED,
}


_LIFECYCLES = {
    "static": trading_pb2.CREDENTIAL_LIFECYCLE_STATIC,
    "password_session": trading_pb2.CREDENTIAL_LIFECYCLE_PASSWORD_SESSION,
    "oauth_consent": trading_pb2.CREDENTIAL_LIFECYCLE_OAUTH_CONSENT,
    "derived_token": trading_pb2.CREDENTIAL_LIFECYCLE_DERIVED_TOKEN,
}
_SESSION_STATE = {
    "idle": credential_pb2.SessionStatus.STATE_IDLE,
    "active": credential_pb2.SessionStatus.STATE_ACTIVE,
    "renewing": credential_pb2.SessionStatus.STATE_RENEWING,
    "needs_reauthorization": credential_pb2.SessionStatus.STATE_NEEDS_REAUTHORIZATION,
    "locked_out": credential_pb2.SessionStatus.STATE_LOCKED_OUT,
}


def application_msg(view: ApplicationView) -> cpb.PlatformApplication:
    """Metadata of a platform application (the client secret is never returned)."""
    inv_brokers = {v: k for k, v in BROKERS.items()}
    inv_env = {v: k for k, v in ENVIRONMENTS.items()}
    msg = cpb.PlatformApplication(
        name=view.name, broker=inv_brokers[view.venue], environment=inv_env[view.environment],
        client_id_hint=view.client_id_hint, version=view.version,
    )  # fmt: skip
    ts = timestamp(view.update_time)
    if ts is not None:
        msg.update_time.CopyFrom(ts)
    return msg


def session_msg(view: CredentialView) -> credential_pb2.SessionStatus:
    """States, times and reason codes of the venue session; never a token."""
    row = view.session
    if row is None:
        return credential_pb2.SessionStatus(state=credential_pb2.SessionStatus.STATE_IDLE)
    msg = credential_pb2.SessionStatus(
        state=_SESSION_STATE.get(row.state, credential_pb2.SessionStatus.STATE_UNSPECIFIED),
        consecutive_failures=row.failures,
        last_error_reason=row.last_error,
        generation=row.generation,
    )
    for field, value in (
        ("expire_time", row.expire_time),
        ("refresh_expire_time", row.refresh_expire_time),
        ("renew_time", row.renew_time),
        ("next_attempt_time", row.next_attempt_time),
    ):
        ts = timestamp(value)
        if ts is not None:
            getattr(msg, field).CopyFrom(ts)
    return msg


def enum_in(field: str, value: int, table: Mapping[Any, T]) -> T:
    if value not in table:
        raise InvalidArgument(field, "must be set to a supported value")
    return table[value]


def broker_of(value: int) -> Venue:
    return enum_in("broker", value, BROKERS)


def environment_of(value: int) -> Environment:
    return enum_in("environment", value, ENVIRONMENTS)


def algorithm_of(value: int) -> KeyAlgorithm:
    return enum_in("key_algorithm", value, ALGORITHMS)


def material_of(msg: credential_pb2.SecretMaterial) -> MaterialInput:
    """Wrap secret fields in ``Secret`` at the edge: nothing below sees them as plain str."""
    return MaterialInput(
        api_key=msg.api_key,
        secret=Secret(msg.secret),
        passphrase=Secret(msg.passphrase),
        private_key=Secret(msg.private_key),
        account_id=msg.account_id,
        username=msg.username,
        server=msg.server,
        authorization_code=Secret(msg.authorization_code),
        redirect_uri=msg.redirect_uri,
    )


def policy_of(msg: credential_pb2.OrderPolicy) -> OrderPolicy:
    def seconds(d: duration_pb2.Duration, default: float) -> float:
        return wk.seconds(d, "policy") if (d.seconds or d.nanos) else default

    sides = [SIDES.get(s) for s in msg.allowed_sides]
    types = [ORDER_TYPES.get(t) for t in msg.allowed_order_types]
    if None in sides:
        raise InvalidArgument("policy.allowed_sides", "unspecified side")
    if None in types:
        raise InvalidArgument("policy.allowed_order_types", "unspecified order type")
    return OrderPolicy(
        allowed_symbols=tuple(msg.allowed_symbols),
        allowed_sides=tuple(s for s in sides if s),
        allowed_order_types=tuple(t for t in types if t),
        max_quantity=msg.max_quantity,
        max_notional=msg.max_notional,
        max_orders_per_interval=msg.max_orders_per_interval,
        rate_interval_s=seconds(msg.rate_interval, 60.0),
        max_freshness_s=seconds(msg.max_freshness, 5.0),
    )


def policy_msg(policy: OrderPolicy) -> credential_pb2.OrderPolicy:
    inv_sides = {v: k for k, v in SIDES.items()}
    inv_types = {v: k for k, v in ORDER_TYPES.items()}
    msg = credential_pb2.OrderPolicy(
        allowed_symbols=list(policy.allowed_symbols),
        allowed_sides=[inv_sides[s] for s in policy.allowed_sides],
        allowed_order_types=[inv_types[t] for t in policy.allowed_order_types],
        max_quantity=policy.max_quantity,
        max_notional=policy.max_notional,
        max_orders_per_interval=policy.max_orders_per_interval,
    )
    msg.rate_interval.FromSeconds(int(policy.rate_interval_s))
    msg.max_freshness.FromMilliseconds(int(policy.max_freshness_s * 1000))
    return msg


def version_msg(ws: str, cred: str, v: VersionView) -> credential_pb2.CredentialVersion:
    msg = credential_pb2.CredentialVersion(
        name=version_name(ws, cred, v.version),
        version=v.version,
        state=_VERSION_STATE[v.state],
        api_key_hint=v.api_key_hint,
        kek_reference=f"{v.provider_id}:{v.kek_version}" if v.provider_id else "",
    )
    for field, value in (
        ("create_time", v.create_time),
        ("promote_time", v.promote_time),
        ("destroy_time", v.destroy_time or v.destroy_after),
    ):
        ts = timestamp(value)
        if ts is not None:
            getattr(msg, field).CopyFrom(ts)
    return msg


_RESULTS = {
    "clean": credential_pb2.Attestation.RESULT_CLEAN,
    "excessive": credential_pb2.Attestation.RESULT_EXCESSIVE,
    "not_supported": credential_pb2.Attestation.RESULT_NOT_SUPPORTED,
    "failed": credential_pb2.Attestation.RESULT_FAILED,
}


def attestation_msg(doc: Mapping[str, Any]) -> credential_pb2.Attestation:
    msg = credential_pb2.Attestation(
        result=_RESULTS.get(doc.get("result", ""), credential_pb2.Attestation.RESULT_UNSPECIFIED),
        scopes=[SCOPES[Scope(s)] for s in doc.get("scopes", [])],
        venue_fields={str(k): str(v) for k, v in doc.get("venue_fields", {}).items()},
    )
    if doc.get("attest_time"):
        msg.attest_time.FromJsonString(str(doc["attest_time"]).replace("+00:00", "Z"))
    return msg


def credential_msg(view: CredentialView) -> credential_pb2.Credential:
    c = view.credential
    inv_brokers = {v: k for k, v in BROKERS.items()}
    inv_env = {v: k for k, v in ENVIRONMENTS.items()}
    inv_alg = {v: k for k, v in ALGORITHMS.items()}
    msg = credential_pb2.Credential(
        name=view.name,
        uid=c.id,
        display_name=c.display_name,
        broker=inv_brokers[Venue(c.broker)],
        environment=inv_env[Environment(c.environment)],
        key_algorithm=inv_alg[KeyAlgorithm(c.key_algorithm)],
        state=_CRED_STATE[c.state],
        api_key_hint=c.api_key_hint,
        scopes=[SCOPES[Scope(s)] for s in c.scopes],
        venue_scopes=list(c.venue_scopes),
        single_permission_tier=c.single_permission_tier,
        warnings=view.warnings,
        current_version=c.current_version,
        versions=[version_msg(view.workspace, c.resource_id, v) for v in view.versions],
        policy=policy_msg(OrderPolicy.from_json(c.policy)),
        proxy_only=view.proxy_only,
        etag=etag(c.id, c.revision),
    )
    if c.attestation:
        msg.attestation.CopyFrom(attestation_msg(c.attestation))
    msg.lifecycle = _LIFECYCLES[view.lifecycle]
    if view.lifecycle != "static":
        msg.session.CopyFrom(session_msg(view))
    for field, value in (
        ("create_time", c.create_time),
        ("update_time", c.update_time),
        ("revoke_time", c.revoke_time),
    ):
        ts = timestamp(value)
        if ts is not None:
            getattr(msg, field).CopyFrom(ts)
    return msg
