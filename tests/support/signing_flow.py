"""Signing flows over the real gRPC API, for the issue-4 signing suite.

A test creates a workspace, onboards a credential with ``CreateCredential`` (admin plane, role
``onboarding``), opens a routing context with ``BeginRouting`` on the data-plane Unix socket (role
``router``) and asks for ``SignOrder`` / ``ExecuteOrder``. Every venue has a key factory here
(secrets generated at run time, or a venue's published documentation key) that knows how to
register the same key with that venue's loopback stub, so signed requests can be sent to a stub
that checks them the way the venue documents.

``venue_vault`` starts all seven loopback stubs and one vault whose ``signing.venue_base_urls``
point every venue at its stub.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from google.protobuf import duration_pb2
from pipsync.vault.v1 import credential_pb2, trading_pb2
from pipsync.vault.v1 import credential_service_pb2 as cpb
from pipsync.vault.v1 import credential_service_pb2_grpc as cgrpc
from pipsync.vault.v1 import signing_service_pb2 as spb
from pipsync.vault.v1 import signing_service_pb2_grpc as sgrpc
from pipsync.vault.v1 import workspace_service_pb2 as wpb
from pipsync.vault.v1 import workspace_service_pb2_grpc as wgrpc

from tests.support.vault import RunningVault, iter_audit, start_vault
from tests.venue_stubs.alpaca_stub import AlpacaStub
from tests.venue_stubs.binance_stub import BinanceStub, LoopbackVenueStub
from tests.venue_stubs.bybit_stub import BybitStub
from tests.venue_stubs.coinbase_stub import CoinbaseStub
from tests.venue_stubs.kraken_stub import KrakenStub
from tests.venue_stubs.oanda_stub import OandaStub
from tests.venue_stubs.okx_stub import OkxKey, OkxStub

B = trading_pb2
WS = "ws-a"

# Published documentation example keys (reference/broker-signing.md §1.3, §2.2, §3.2).
BINANCE_DOC_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
BINANCE_DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
BINANCE_USDM_DOC_KEY = "dbefbc809e3e83c283a984c3a1459732ea7db1360ca80c5c2c8867408d28cc83"
BINANCE_USDM_DOC_SECRET = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
KRAKEN_DOC_SECRET = (
    "kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg=="
)

VENUE_NAMES = {
    B.BROKER_BINANCE_SPOT: "binance_spot",
    B.BROKER_BINANCE_USDM: "binance_usdm",
    B.BROKER_KRAKEN_SPOT: "kraken_spot",
    B.BROKER_BYBIT: "bybit",
    B.BROKER_OKX: "okx",
    B.BROKER_COINBASE_ADVANCED: "coinbase_advanced",
    B.BROKER_OANDA: "oanda",
    B.BROKER_ALPACA: "alpaca",
}


# --- key material ------------------------------------------------------------------------------
def _pkcs8(key: Any) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def new_ed25519() -> tuple[str, ed25519.Ed25519PublicKey]:
    key = ed25519.Ed25519PrivateKey.generate()
    return _pkcs8(key), key.public_key()


def new_rsa() -> tuple[str, rsa.RSAPublicKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _pkcs8(key), key.public_key()


def new_p256() -> tuple[str, ec.EllipticCurvePublicKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    return _pkcs8(key), key.public_key()


def new_api_key(prefix: str = "key") -> str:
    return f"{prefix}{secrets.token_hex(12)}"


@dataclass(frozen=True)
class VenueKey:
    """One credential as onboarded (``CreateCredential`` fields) plus what its stub needs."""

    broker: int
    environment: int
    algorithm: int
    material: credential_pb2.SecretMaterial
    scopes: tuple[str, ...]
    acknowledge: bool = False
    public: Any = None  # public key of an asymmetric credential
    secret_text: str = ""  # the secret (HMAC secret, token, ...), for independent checks

    @property
    def venue(self) -> str:
        return VENUE_NAMES[self.broker]

    @property
    def api_key(self) -> str:
        return self.material.api_key

    def secret_fields(self) -> list[str]:
        """Every secret field this credential holds (for leak scans)."""
        m = self.material
        return [s for s in (m.secret, m.passphrase, m.private_key) if s]


def binance_hmac(
    api_key: str | None = None, secret: str | None = None, *, usdm: bool = False
) -> VenueKey:
    secret = secret or secrets.token_urlsafe(48)
    api_key = api_key or new_api_key("bn")
    return VenueKey(
        B.BROKER_BINANCE_USDM if usdm else B.BROKER_BINANCE_SPOT, B.ENVIRONMENT_LIVE,
        B.KEY_ALGORITHM_HMAC_SHA256, credential_pb2.SecretMaterial(api_key=api_key, secret=secret),
        ("enableReading", "enableFutures" if usdm else "enableSpotAndMarginTrading"),
        secret_text=secret,
    )  # fmt: skip


def binance_asymmetric(algorithm: int) -> VenueKey:
    pem, public = new_ed25519() if algorithm == B.KEY_ALGORITHM_ED25519 else new_rsa()
    return VenueKey(
        B.BROKER_BINANCE_SPOT, B.ENVIRONMENT_LIVE, algorithm,
        credential_pb2.SecretMaterial(api_key=new_api_key("bn"), private_key=pem),
        ("enableReading", "enableSpotAndMarginTrading"), public=public, secret_text=pem,
    )  # fmt: skip


def kraken(secret: str | None = None) -> VenueKey:
    secret = secret or base64.b64encode(secrets.token_bytes(64)).decode()
    return VenueKey(
        B.BROKER_KRAKEN_SPOT, B.ENVIRONMENT_LIVE, B.KEY_ALGORITHM_HMAC_SHA512,
        credential_pb2.SecretMaterial(api_key=new_api_key("kr"), secret=secret),
        ("query-funds", "modify-trades", "close-trades"), secret_text=secret,
    )  # fmt: skip


def bybit_hmac(secret: str | None = None) -> VenueKey:
    secret = secret or secrets.token_urlsafe(27)
    return VenueKey(
        B.BROKER_BYBIT, B.ENVIRONMENT_TESTNET, B.KEY_ALGORITHM_HMAC_SHA256,
        credential_pb2.SecretMaterial(api_key=new_api_key("bb"), secret=secret),
        ("ContractTrade", "SpotTrade"), secret_text=secret,
    )  # fmt: skip


def bybit_rsa() -> VenueKey:
    pem, public = new_rsa()
    return VenueKey(
        B.BROKER_BYBIT, B.ENVIRONMENT_TESTNET, B.KEY_ALGORITHM_RSA,
        credential_pb2.SecretMaterial(api_key=new_api_key("bb"), private_key=pem),
        ("ContractTrade", "SpotTrade"), public=public, secret_text=pem,
    )  # fmt: skip


def okx(secret: str | None = None, passphrase: str | None = None) -> VenueKey:
    secret = secret or secrets.token_hex(16).upper()
    passphrase = passphrase or "Pp" + secrets.token_hex(6)
    return VenueKey(
        B.BROKER_OKX, B.ENVIRONMENT_LIVE, B.KEY_ALGORITHM_HMAC_SHA256,
        credential_pb2.SecretMaterial(
            api_key=str(uuid.uuid4()), secret=secret, passphrase=passphrase
        ),
        ("read_only", "trade"), secret_text=secret,
    )  # fmt: skip


def coinbase(algorithm: int = B.KEY_ALGORITHM_ECDSA_P256) -> VenueKey:
    name = f"organizations/{uuid.uuid4()}/apiKeys/{uuid.uuid4()}"
    if algorithm == B.KEY_ALGORITHM_ECDSA_P256:
        pem, public = new_p256()
        material = credential_pb2.SecretMaterial(api_key=name, private_key=pem)
        text = pem
    else:  # Coinbase shows Ed25519 secrets as base64(seed || public key)
        key = ed25519.Ed25519PrivateKey.generate()
        public = key.public_key()
        raw = key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        ) + public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)  # fmt: skip
        text = base64.b64encode(raw).decode()
        material = credential_pb2.SecretMaterial(api_key=name, private_key=text)
    return VenueKey(
        B.BROKER_COINBASE_ADVANCED, B.ENVIRONMENT_LIVE, algorithm, material, ("view", "trade"),
        public=public, secret_text=text,
    )  # fmt: skip


OANDA_ACCOUNT = "101-004-1234567-001"


def oanda(token: str | None = None) -> VenueKey:
    token = token or secrets.token_hex(16) + "-" + secrets.token_hex(16)
    return VenueKey(
        B.BROKER_OANDA, B.ENVIRONMENT_PAPER, B.KEY_ALGORITHM_BEARER,
        credential_pb2.SecretMaterial(secret=token, account_id=OANDA_ACCOUNT), ("trade",),
        acknowledge=True, secret_text=token,
    )  # fmt: skip


def alpaca(secret: str | None = None) -> VenueKey:
    secret = secret or secrets.token_urlsafe(30)
    return VenueKey(
        B.BROKER_ALPACA, B.ENVIRONMENT_PAPER, B.KEY_ALGORITHM_STATIC_HEADERS,
        credential_pb2.SecretMaterial(api_key="PK" + secrets.token_hex(9).upper(), secret=secret),
        ("trade",), acknowledge=True, secret_text=secret,
    )  # fmt: skip


# --- orders ------------------------------------------------------------------------------------
_SIDES = {"buy": B.ORDER_SIDE_BUY, "sell": B.ORDER_SIDE_SELL}
_TYPES = {"market": B.ORDER_TYPE_MARKET, "limit": B.ORDER_TYPE_LIMIT}


def coid(prefix: str = "c") -> str:
    """A client order id every venue accepts (OKX: letters and digits only, at most 32)."""
    return f"{prefix}{uuid.uuid4().hex[:20]}"


def place(
    symbol: str, client_order_id: str | None = None, *, side: str = "buy", kind: str = "limit",
    qty: str = "1", price: str = "0.1", tif: int = B.TIME_IN_FORCE_GTC,
    extras: dict[str, str] | None = None,
) -> trading_pb2.Order:  # fmt: skip
    """A place-order ``Order`` (market orders carry no price and no time in force)."""
    return trading_pb2.Order(
        operation=B.ORDER_OPERATION_PLACE, symbol=symbol, side=_SIDES[side], type=_TYPES[kind],
        quantity=qty, price=price if kind == "limit" else "",
        time_in_force=tif if kind == "limit" else B.TIME_IN_FORCE_UNSPECIFIED,
        client_order_id=client_order_id or coid(), extras=extras or {},
    )  # fmt: skip


def place_for(
    key: VenueKey, client_order_id: str | None = None, **changes: Any
) -> trading_pb2.Order:
    """A small limit buy each venue's module and stub accept."""
    defaults: dict[int, dict[str, Any]] = {
        B.BROKER_BINANCE_SPOT: {"symbol": "LTCBTC", "qty": "1", "price": "0.1"},
        B.BROKER_BINANCE_USDM: {"symbol": "BTCUSDT", "qty": "1", "price": "9000"},
        B.BROKER_KRAKEN_SPOT: {"symbol": "XBTUSD", "qty": "1.25", "price": "37500"},
        B.BROKER_BYBIT: {"symbol": "BTCUSDT", "qty": "0.01", "price": "30000",
                         "extras": {"category": "linear"}},
        B.BROKER_OKX: {"symbol": "BTC-USDT", "qty": "0.01", "price": "30000"},
        B.BROKER_COINBASE_ADVANCED: {"symbol": "BTC-USD", "qty": "0.01", "price": "30000"},
        B.BROKER_OANDA: {"symbol": "EUR_USD", "qty": "100", "price": "1.1"},
        B.BROKER_ALPACA: {"symbol": "AAPL", "qty": "1", "price": "100",
                          "tif": B.TIME_IN_FORCE_DAY},
    }  # fmt: skip
    fields = defaults[key.broker] | changes
    return place(fields.pop("symbol"), client_order_id, **fields)


def query_account(extras: dict[str, str] | None = None) -> trading_pb2.Order:
    return trading_pb2.Order(operation=B.ORDER_OPERATION_QUERY_ACCOUNT, extras=extras or {})


# --- RPCs --------------------------------------------------------------------------------------
def workspaces(vault: RunningVault) -> wgrpc.WorkspaceServiceStub:
    return wgrpc.WorkspaceServiceStub(vault.channel())


def credentials(vault: RunningVault) -> cgrpc.CredentialServiceStub:
    return cgrpc.CredentialServiceStub(vault.channel())


def signing(vault: RunningVault, target: str | None = None) -> sgrpc.SigningServiceStub:
    """The SigningService on the data-plane Unix socket (or ``target``)."""
    return sgrpc.SigningServiceStub(vault.channel(target or vault.socket_target))


def create_workspace(vault: RunningVault, ws: str = WS) -> None:
    workspaces(vault).CreateWorkspace(
        wpb.CreateWorkspaceRequest(workspace_id=ws, reason="signing tests"),
        metadata=vault.md("security"), timeout=10,
    )  # fmt: skip


def create_request(
    key: VenueKey, cred_id: str, *, ws: str = WS, policy: credential_pb2.OrderPolicy | None = None,
    attest_on_create: bool = False,
) -> cpb.CreateCredentialRequest:  # fmt: skip
    request = cpb.CreateCredentialRequest(
        parent=f"workspaces/{ws}", credential_id=cred_id, display_name=f"{key.venue} test",
        broker=key.broker, environment=key.environment, key_algorithm=key.algorithm,
        material=key.material, scopes=list(key.scopes),
        acknowledge_single_permission_tier=key.acknowledge, attest_on_create=attest_on_create,
        reason="signing test onboarding",
    )  # fmt: skip
    if policy is not None:
        request.policy.CopyFrom(policy)
    return request


def onboard(
    vault: RunningVault, key: VenueKey, cred_id: str, *, ws: str = WS,
    policy: credential_pb2.OrderPolicy | None = None, attest_on_create: bool = False,
) -> credential_pb2.Credential:  # fmt: skip
    request = create_request(key, cred_id, ws=ws, policy=policy, attest_on_create=attest_on_create)
    response = credentials(vault).CreateCredential(
        request, metadata=vault.md("onboarding"), timeout=15
    )
    return response.credential


def begin(
    vault: RunningVault, credential: str, *, who: str = "router", ttl_s: float | None = None,
    strategy_id: str = "strategy-1",
) -> spb.RoutingContext:  # fmt: skip
    request = spb.BeginRoutingRequest(
        credential=credential, strategy_id=strategy_id, reason="route orders"
    )
    if ttl_s is not None:
        request.ttl.CopyFrom(duration_pb2.Duration(seconds=int(ttl_s), nanos=int(ttl_s % 1 * 1e9)))
    return signing(vault).BeginRouting(request, metadata=vault.md(who), timeout=10).routing_context


def end(vault: RunningVault, rc: str, *, who: str = "router") -> spb.RoutingContext:
    return (
        signing(vault)
        .EndRouting(spb.EndRoutingRequest(name=rc, reason="done"), metadata=vault.md(who),
                    timeout=10)
        .routing_context
    )  # fmt: skip


def sign_request(rc: str, order: trading_pb2.Order, credential: str = "") -> spb.SignOrderRequest:
    return spb.SignOrderRequest(
        routing_context=rc, order=order, reason="route a signal", credential=credential
    )


def sign(
    vault: RunningVault, rc: str, order: trading_pb2.Order, *, who: str = "router",
    credential: str = "",
) -> spb.SignOrderResponse:  # fmt: skip
    return signing(vault).SignOrder(
        sign_request(rc, order, credential), metadata=vault.md(who), timeout=10
    )


def execute_request(
    rc: str, order: trading_pb2.Order, credential: str = ""
) -> spb.ExecuteOrderRequest:
    return spb.ExecuteOrderRequest(
        routing_context=rc, order=order, reason="route a signal", credential=credential
    )


def execute(
    vault: RunningVault, rc: str, order: trading_pb2.Order, *, who: str = "router",
    credential: str = "",
) -> spb.ExecuteOrderResponse:  # fmt: skip
    return signing(vault).ExecuteOrder(
        execute_request(rc, order, credential), metadata=vault.md(who), timeout=15
    )


def policy(
    *, symbols: Sequence[str] = (), sides: Sequence[str] = (), kinds: Sequence[str] = (),
    max_quantity: str = "", max_notional: str = "", max_orders: int = 0,
    rate_interval_s: int = 0, max_freshness_ms: int = 0,
) -> credential_pb2.OrderPolicy:  # fmt: skip
    msg = credential_pb2.OrderPolicy(
        allowed_symbols=list(symbols), allowed_sides=[_SIDES[s] for s in sides],
        allowed_order_types=[_TYPES[k] for k in kinds], max_quantity=max_quantity,
        max_notional=max_notional, max_orders_per_interval=max_orders,
    )  # fmt: skip
    if rate_interval_s:
        msg.rate_interval.FromSeconds(rate_interval_s)
    if max_freshness_ms:
        msg.max_freshness.FromMilliseconds(max_freshness_ms)
    return msg


def update_policy(
    vault: RunningVault, name: str, new: credential_pb2.OrderPolicy
) -> credential_pb2.Credential:
    return (
        credentials(vault)
        .UpdateCredentialPolicy(
            cpb.UpdateCredentialPolicyRequest(name=name, policy=new, reason="tighten limits"),
            metadata=vault.md("onboarding"), timeout=10,
        )
        .credential
    )  # fmt: skip


def get_credential(vault: RunningVault, name: str) -> credential_pb2.Credential:
    return (
        credentials(vault)
        .GetCredential(cpb.GetCredentialRequest(name=name), metadata=vault.md("security"),
                       timeout=10)
        .credential
    )  # fmt: skip


def revoke(vault: RunningVault, name: str) -> None:
    credentials(vault).RevokeCredential(
        cpb.RevokeCredentialRequest(name=name, reason="key leaked"),
        metadata=vault.md("security"), timeout=10,
    )  # fmt: skip


def attest(vault: RunningVault, name: str) -> cpb.AttestCredentialPermissionsResponse:
    return credentials(vault).AttestCredentialPermissions(
        cpb.AttestCredentialPermissionsRequest(name=name, reason="permission review"),
        metadata=vault.md("security"), timeout=15,
    )  # fmt: skip


def freeze(vault: RunningVault, ws: str = WS) -> None:
    workspaces(vault).FreezeWorkspace(
        wpb.FreezeWorkspaceRequest(name=f"workspaces/{ws}", reason="incident"),
        metadata=vault.md("security"), timeout=10,
    )  # fmt: skip


def unfreeze(vault: RunningVault, ws: str = WS) -> None:
    workspaces(vault).UnfreezeWorkspace(
        wpb.UnfreezeWorkspaceRequest(name=f"workspaces/{ws}", reason="resolved"),
        metadata=vault.md("security"), timeout=10,
    )  # fmt: skip


# --- signed requests ---------------------------------------------------------------------------
def header_map(signed: spb.SignedRequest) -> dict[str, str]:
    return {h.name: h.value for h in signed.headers}


def send(
    signed: spb.SignedRequest, *, url: str | None = None, body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:  # fmt: skip
    """Send a signed request exactly as returned (or with one part replaced) with httpx."""
    sent_headers = list((headers or header_map(signed)).items())
    content = signed.body if body is None else body
    return httpx.request(
        signed.method, url or signed.url, headers=sent_headers, content=content or None, timeout=5
    )


def expire_ms(signed: spb.SignedRequest) -> int:
    return signed.expire_time.seconds * 1000 + signed.expire_time.nanos // 1_000_000


def now_ms() -> int:
    return int(time.time() * 1000)


def flip_byte(data: bytes, old: bytes, new: bytes) -> bytes:
    """Replace the first occurrence of ``old`` by ``new`` (same length: one byte changed)."""
    assert len(old) == len(new) and old in data, (old, data)
    return data.replace(old, new, 1)


# --- audit -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AuditRow:
    id: int
    seq: int
    action: str
    outcome: str
    actor_id: str
    workspace: str
    credential: str
    routing_context: str
    error_reason: str
    details: dict[str, str]
    raw: str

    def key(self) -> tuple[str, str, str]:
        return self.action, self.outcome, self.error_reason


def audit_rows(vault: RunningVault, after: int = 0) -> list[AuditRow]:
    rows = []
    for event in iter_audit(vault.app):
        if event.id <= after:
            continue
        rows.append(
            AuditRow(
                event.id, event.seq, event.action, event.outcome, event.actor_id, event.workspace,
                event.credential, event.routing_context, event.error_reason,
                dict(event.details or {}), repr(vars(event)),
            )
        )  # fmt: skip
    return rows


def last_audit_id(vault: RunningVault) -> int:
    rows = audit_rows(vault)
    return rows[-1].id if rows else 0


# --- a vault wired to every loopback venue -----------------------------------------------------
@dataclass
class Venues:
    binance: BinanceStub
    kraken: KrakenStub
    bybit: BybitStub
    okx: OkxStub
    coinbase: CoinbaseStub
    oanda: OandaStub
    alpaca: AlpacaStub

    def base_urls(self) -> dict[str, str]:
        return {
            "binance_spot": self.binance.base_url, "binance_usdm": self.binance.base_url,
            "kraken_spot": self.kraken.base_url, "bybit": self.bybit.base_url,
            "okx": self.okx.base_url, "coinbase_advanced": self.coinbase.base_url,
            "oanda": self.oanda.base_url, "alpaca": self.alpaca.base_url,
        }  # fmt: skip

    def stub_for(self, key: VenueKey) -> LoopbackVenueStub:
        return {
            B.BROKER_BINANCE_SPOT: self.binance, B.BROKER_BINANCE_USDM: self.binance,
            B.BROKER_KRAKEN_SPOT: self.kraken, B.BROKER_BYBIT: self.bybit, B.BROKER_OKX: self.okx,
            B.BROKER_COINBASE_ADVANCED: self.coinbase, B.BROKER_OANDA: self.oanda,
            B.BROKER_ALPACA: self.alpaca,
        }[key.broker]  # fmt: skip

    def register(self, key: VenueKey) -> None:
        """Tell the venue stub about the key (the venue's side of onboarding)."""
        m = key.material
        if key.broker in (B.BROKER_BINANCE_SPOT, B.BROKER_BINANCE_USDM):
            self.binance.keys[m.api_key] = key.public or m.secret
        elif key.broker == B.BROKER_KRAKEN_SPOT:
            self.kraken.keys[m.api_key] = m.secret
        elif key.broker == B.BROKER_BYBIT:
            self.bybit.keys[m.api_key] = key.public or m.secret
        elif key.broker == B.BROKER_OKX:
            simulated = key.environment != B.ENVIRONMENT_LIVE
            self.okx.keys[m.api_key] = OkxKey(m.secret, m.passphrase, simulated=simulated)
        elif key.broker == B.BROKER_COINBASE_ADVANCED:
            self.coinbase.keys[m.api_key] = key.public
        elif key.broker == B.BROKER_OANDA:
            self.oanda.tokens[m.secret] = {m.account_id}
        elif key.broker == B.BROKER_ALPACA:
            self.alpaca.keys[m.api_key] = m.secret

    def set_clock_offset(self, offset_ms: int) -> None:
        """Move every stub's server clock ``offset_ms`` away from the real clock."""
        for stub in self.all():
            stub.clock = lambda: int(time.time() * 1000) + offset_ms

    def all(self) -> list[LoopbackVenueStub]:
        return [self.binance, self.kraken, self.bybit, self.okx, self.coinbase, self.oanda,
                self.alpaca]  # fmt: skip


@dataclass
class Wired:
    vault: RunningVault
    venues: Venues

    def onboard(self, key: VenueKey, cred_id: str, **kwargs: Any) -> credential_pb2.Credential:
        self.venues.register(key)
        return onboard(self.vault, key, cred_id, **kwargs)


@contextlib.contextmanager
def venue_stubs() -> Iterator[Venues]:
    with contextlib.ExitStack() as stack:
        yield Venues(
            binance=stack.enter_context(BinanceStub({})),
            kraken=stack.enter_context(KrakenStub({})),
            bybit=stack.enter_context(BybitStub({})),
            okx=stack.enter_context(OkxStub({})),
            coinbase=stack.enter_context(CoinbaseStub({})),
            oanda=stack.enter_context(OandaStub({})),
            alpaca=stack.enter_context(AlpacaStub({})),
        )


def start_wired(
    home: Path, venues: Venues, database_url: str | None = None, *, recv_window_cap_ms: int = 5000,
    coinbase_strict: bool = False, ws_ids: Sequence[str] = (WS,), **overrides: Any,
) -> RunningVault:  # fmt: skip
    """A vault whose venues all point at the loopback stubs, with its workspaces created."""
    signing_settings = {
        "venue_base_urls": venues.base_urls(), "recv_window_cap_ms": recv_window_cap_ms,
        "coinbase_strict": coinbase_strict, **overrides.pop("signing", {}),
    }  # fmt: skip
    vault = start_vault(home, database_url, signing=signing_settings, **overrides)
    try:
        for ws in ws_ids:
            with contextlib.suppress(grpc.RpcError):  # already there after a restart
                create_workspace(vault, ws)
    except BaseException:
        vault.stop()
        raise
    return vault


@contextlib.contextmanager
def venue_vault(home: Path, database_url: str | None = None, **settings: Any) -> Iterator[Wired]:
    """All seven loopback stubs and one vault pointed at them (workspace ``ws-a`` created)."""
    with venue_stubs() as venues:
        vault = start_wired(home, venues, database_url, **settings)
        try:
            yield Wired(vault, venues)
        finally:
            vault.stop()


def pages(vault: RunningVault) -> list[dict[str, Any]]:
    """The pager outbox rows' payloads, oldest first."""
    from sqlalchemy import select

    from tests.support.vault import inspect_db
    from vault_server.storage.models import PagerOutbox

    db = inspect_db(vault.app)
    try:
        with db.transaction() as session:
            rows = session.execute(select(PagerOutbox).order_by(PagerOutbox.id)).scalars().all()
            return [dict(row.payload) for row in rows]
    finally:
        if db is not vault.app.db:
            db.dispose()


def refusal(
    vault: RunningVault, method: str, request: Any, *, who: str = "router",
    target: str | None = None,
) -> tuple[Any, list[AuditRow]]:  # fmt: skip
    """Call ``SigningService.<method>`` expecting an error; returns it and the new audit rows."""
    from tests.support.errors import expect_error

    mark = last_audit_id(vault)
    err = expect_error(
        getattr(signing(vault, target), method), request, metadata=vault.md(who), timeout=10
    )
    return err, audit_rows(vault, after=mark)


@contextlib.contextmanager
def vault_beside(stub: Any, home: Path, venue: str) -> Iterator[RunningVault]:
    """A dev vault logging at DEBUG (so a leak into the log would show), whose base URL for
    ``venue`` is the loopback ``stub``, with the signing tests' workspace created."""
    vault = start_vault(
        home, signing={"venue_base_urls": {venue: stub.base_url}}, log_level="DEBUG"
    )
    try:
        create_workspace(vault)
        yield vault
    finally:
        vault.stop()
