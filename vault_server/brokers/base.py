"""The contract every venue module implements.

A venue module turns a structured, already policy-checked :class:`OrderSpec` into the exact HTTP
request the venue expects, signed with the credential (detached mode), or into a request the vault
sends itself (proxy mode, for venues whose scheme puts the secret on the wire). It also owns the
venue's endpoint allow-list and fund-moving block-list, its scope vocabulary, its freshness rules
and how to ask the venue which permissions a key really has.

Venue modules are pure: no I/O, no clock, no randomness of their own. Time, nonces and random
bytes arrive in :class:`SigningContext`, so every signature is reproducible in tests.
"""

from __future__ import annotations

import enum
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from vault_server.brokers import _confusables
from vault_server.core.errors import EndpointNotAllowed, UnknownScope, WithdrawalScopeRejected
from vault_server.core.secret import Secret


class Venue(enum.Enum):
    BINANCE_SPOT = "binance_spot"
    BINANCE_USDM = "binance_usdm"
    KRAKEN_SPOT = "kraken_spot"
    BYBIT = "bybit"
    OKX = "okx"
    COINBASE_ADVANCED = "coinbase_advanced"
    OANDA = "oanda"
    ALPACA = "alpaca"
    IG = "ig"
    # Declared in the API (issue 20 item 6), not implemented yet: the registry refuses them.
    DERIBIT = "deribit"
    KUCOIN = "kucoin"
    BITGET = "bitget"
    GATE = "gate"
    KRAKEN_FUTURES = "kraken_futures"
    HYPERLIQUID = "hyperliquid"
    # Forex/CFD platforms with a session or OAuth lifecycle (issue 21): proxy mode only.
    CTRADER = "ctrader"
    TRADELOCKER = "tradelocker"
    MATCH_TRADER = "match_trader"
    DXTRADE = "dxtrade"
    METAAPI = "metaapi"


# Short forms people type -> the canonical venue name. The client distribution keeps an equal
# table (pipvault_client.VENUE_ALIASES: the server may not import it); a test holds them equal.
VENUE_ALIASES: Mapping[str, str] = {
    "binance": "binance_spot",
    "kraken": "kraken_spot",
    "coinbase": "coinbase_advanced",
    "gateio": "gate",
    "gate_io": "gate",
    "krakenfutures": "kraken_futures",
    "matchtrader": "match_trader",
    "metatrader": "metaapi",
}


def parse_venue(text: str) -> Venue:
    """Any accepted spelling -> the venue: its canonical name (``binance_spot``), any case,
    ``-`` for ``_`` (``binance-spot``), the API enum name (``BROKER_BINANCE_SPOT``) or a short
    form in :data:`VENUE_ALIASES`. Raises ``ValueError`` naming the known venues."""
    if text.isascii():
        key = text.strip().lower().replace("-", "_").removeprefix("broker_")
        key = VENUE_ALIASES.get(key, key)
        for venue in Venue:
            if venue.value == key:
                return venue
    known = ", ".join(v.value for v in Venue)
    raise ValueError(f"unknown venue {text!r} (known: {known})")


class Environment(enum.Enum):
    LIVE = "live"
    PAPER = "paper"
    TESTNET = "testnet"


class KeyAlgorithm(enum.Enum):
    """How the credential authenticates to the venue."""

    HMAC_SHA256 = "hmac_sha256"  # Binance, Bybit, OKX (secret is ASCII)
    HMAC_SHA512 = "hmac_sha512"  # Kraken (secret is base64)
    ED25519 = "ed25519"  # Binance Ed25519, Coinbase EdDSA JWT
    RSA = "rsa"  # Binance RSA, Bybit RSA (PKCS#1 v1.5 SHA-256)
    ECDSA_P256 = "ecdsa_p256"  # Coinbase ES256 JWT
    BEARER = "bearer"  # OANDA personal access token
    STATIC_HEADERS = "static_headers"  # Alpaca key id + secret headers
    SESSION_LOGIN = "session_login"  # IG, TradeLocker, Match-Trader, DXtrade (password login)
    SECP256K1 = "secp256k1"  # Hyperliquid EIP-712 agent keys
    OAUTH_CONSENT = "oauth_consent"  # cTrader (authorization code exchanged by the vault)


class Scope(enum.Enum):
    """The normalised permission vocabulary every venue scope maps to."""

    READ = "read"
    TRADE = "trade"
    WITHDRAW = "withdraw"
    TRANSFER = "transfer"


FORBIDDEN_SCOPES = frozenset({Scope.WITHDRAW, Scope.TRANSFER})


class Operation(enum.Enum):
    PLACE_ORDER = "place_order"
    CANCEL_ORDER = "cancel_order"
    AMEND_ORDER = "amend_order"
    QUERY_ORDER = "query_order"
    QUERY_OPEN_ORDERS = "query_open_orders"
    QUERY_ACCOUNT = "query_account"
    CLOSE_POSITION = "close_position"  # whole, or ``quantity`` of it
    AMEND_POSITION = "amend_position"  # the position's stop loss / take profit
    QUERY_POSITIONS = "query_positions"


class SizeUnit(enum.Enum):
    """What an order's ``quantity`` counts; each venue has exactly one (``VenueSpec.size_unit``)."""

    BASE_UNITS = "base_units"
    LOTS = "lots"
    CONTRACTS = "contracts"


@dataclass(frozen=True)
class ProtectiveLevel:
    """A stop loss or take profit: an absolute ``price`` or a ``distance`` from entry (one)."""

    price: Decimal | None = None
    distance: Decimal | None = None


class Side(enum.Enum):
    BUY = "buy"
    SELL = "sell"


class OrderType(enum.Enum):
    MARKET = "market"
    LIMIT = "limit"
    STOP_LOSS = "stop_loss"
    STOP_LIMIT = "stop_limit"
    TAKE_PROFIT = "take_profit"
    TAKE_PROFIT_LIMIT = "take_profit_limit"


class TimeInForce(enum.Enum):
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"
    GTD = "gtd"
    DAY = "day"


@dataclass(frozen=True)
class OrderSpec:
    """A venue-neutral order operation. Fields not needed by an operation are ``None``."""

    operation: Operation
    symbol: str | None = None
    side: Side | None = None
    order_type: OrderType | None = None
    quantity: Decimal | None = None  # base units (shares, or contracts for derivatives)
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: TimeInForce | None = None
    client_order_id: str | None = None
    venue_order_id: str | None = None
    # Venue-specific extras, validated by the venue module against its own allow-list.
    extras: Mapping[str, str] = field(default_factory=dict)
    # Quote units (spend / receive this much of the pair's second currency); exclusive with
    # ``quantity``, place only, and only where the venue offers a quote-sized order.
    quote_quantity: Decimal | None = None
    # Forex/CFD: protective levels attached to a new order or set on a position, the venue's
    # position id (close, amend position), and the unit the caller counts ``quantity`` in
    # (None: the venue's own; anything else must equal it).
    stop_loss: ProtectiveLevel | None = None
    take_profit: ProtectiveLevel | None = None
    position_id: str | None = None
    size_unit: SizeUnit | None = None


@dataclass(frozen=True)
class VenueCredential:
    """Decrypted credential material, alive only for the duration of one signing call."""

    venue: Venue
    environment: Environment
    algorithm: KeyAlgorithm
    api_key: str  # public identifier (API key id, key name, account login)
    secret: Secret | None = None  # HMAC secret, bearer token, Alpaca secret, IG password
    passphrase: Secret | None = None  # OKX passphrase
    private_key_pem: Secret | None = None  # Ed25519/RSA/EC private key (PKCS#8 PEM or venue form)
    account_id: str | None = None  # OANDA account id and similar routing identifiers
    username: str | None = None  # login identity of a password session (not a secret, masked)
    server: str | None = None  # TradeLocker server, DXtrade domain, Match-Trader broker id
    # cTrader (OAuth consent): the one-minute code the user's consent gave, exchanged once by
    # the vault, and the redirect URI it was issued for.
    authorization_code: Secret | None = None
    redirect_uri: str | None = None


@dataclass(frozen=True)
class SigningContext:
    """Everything time- or randomness-dependent a venue module needs, injected by the caller."""

    now_ms: int
    recv_window_ms: int = 5000  # Binance/Bybit freshness window, already capped by config
    nonce: int | None = None  # Kraken: vault-owned, strictly increasing per key
    random_hex: str = ""  # e.g. the Coinbase JWT header nonce
    base_url: str | None = None  # override from config (tests point this at loopback stubs)


@dataclass(frozen=True)
class PreparedRequest:
    """An HTTP request exactly as it must be sent: the signature covers these bytes."""

    method: str
    url: str
    # Headers and body can carry bearer secrets (proxy-only venues): never in a repr or log.
    headers: tuple[tuple[str, str], ...] = field(repr=False)
    body: bytes = field(repr=False)
    expire_at_ms: int = 0  # after this instant the venue (or the vault's policy) refuses it


@dataclass(frozen=True)
class PermissionReport:
    """What the venue says the key may do, normalised."""

    scopes: frozenset[Scope]
    raw: Mapping[str, str]  # non-secret venue fields, for the audit event details


class VenueAdapter(Protocol):
    """One venue. Implementations live in ``vault_server/brokers/<venue>.py``."""

    venue: Venue
    proxy_only: bool  # the scheme would expose the secret: only ExecuteOrder may use it
    single_permission_tier: bool  # the venue offers no narrower key than full trading
    needs_nonce: bool  # SigningContext.nonce must be set (Kraken)
    algorithms: frozenset[KeyAlgorithm]  # key types this venue accepts
    generatable: frozenset[KeyAlgorithm]  # key types the vault may generate (upload public key)
    scope_vocabulary: Mapping[str, frozenset[Scope]]  # normalised venue token -> scopes
    # The login/refresh protocol of a session or OAuth venue (``brokers/lifecycle.py``), else None.
    session: Any
    lifecycle: Any  # brokers.lifecycle.Lifecycle
    size_unit: SizeUnit

    def default_base_url(self, environment: Environment) -> str: ...

    def build(
        self, order: OrderSpec, credential: VenueCredential, ctx: SigningContext
    ) -> PreparedRequest:
        """Build and sign (or, proxy-only, authenticate) the request for ``order``."""
        ...

    def check_endpoint(self, method: str, path: str) -> None:
        """Raise ``EndpointNotAllowed`` unless ``method path`` is a trading/query endpoint."""
        ...

    def permission_request(
        self, credential: VenueCredential, ctx: SigningContext
    ) -> PreparedRequest | None:
        """The signed request that asks the venue for the key's permissions (None: no such API)."""
        ...

    def parse_permissions(self, status: int, body: bytes) -> PermissionReport:
        """Turn the venue's answer to ``permission_request`` into scopes."""
        ...


# --- scope normalisation (shared by every venue) -------------------------------------------------


# Characters that render like ASCII but are not fold to what they read as, from the Unicode UTS #39
# confusables data (brokers/_confusables.py, generated by tools/gen_scope_confusables.py), so
# "wіthdraw" (Cyrillic і) or "ᴡithdraw" (small capital W) cannot slip past the vocabulary. NFKC
# folds full-width, ligature and mathematical forms; combining marks are dropped (scope names
# are ASCII, so a mark is noise or disguise: "wi̇thdraw", and "WİTHDRAW" case-folds to it).
def _rows(text: str) -> dict[int, str]:
    out: dict[int, str] = {}
    for line in text.strip().splitlines():
        code, _, reading = line.partition(" ")
        out[int(code, 16)] = reading
    return out


_CONFUSABLES = _rows(_confusables.ROWS)
# For the fund-moving check only: what UTS #39 reads ASCII letters as ("1"/"I"/"i" as "l", "0" as
# "o", "m" as "rn"), so "wa11et" meets "wallet" where both are folded the same way.
_ASCII_SKELETON = _rows(_confusables.ASCII_ROWS)
_SEPARATORS = str.maketrans(dict.fromkeys(" \t\r\n_-./:&+|'\"`", ""))


def _skeleton(text: str) -> str:
    """UTS #39 order: decompose (NFD), map confusables, then drop the marks left over. Marks the
    data reads as letters (Telugu anusvara U+0C02 reads "o") are mapped before any mark is
    dropped, so "payంut" is still "payout"."""
    mapped = unicodedata.normalize("NFD", text).translate(_CONFUSABLES)
    return "".join(ch for ch in mapped if unicodedata.category(ch)[0] != "M")


def _fold_once(text: str) -> str:
    # Confusables first (ſ reads as f there, NFKC would make it s), then NFKC for what the data
    # leaves (full-width, mathematical and ligature forms), then confusables again.
    return _skeleton(unicodedata.normalize("NFKC", _skeleton(text)))


def normalize_scope_token(raw: str) -> str:
    """Fold a scope string to the form vocabularies are keyed by.

    NFKC, confusables to ASCII, case-folded, combining marks, separators and format characters
    (zero-width, bidi controls) removed: ``" Enable_Withdrawals "``, ``"ＷＩＴＨＤＲＡＷ"``,
    ``"with-draw"`` and ``"ᴡithdraw"`` all become comparable. Folded twice: look-alikes of capital
    letters are mapped before case folding, look-alikes of small letters (and what case folding
    produces, e.g. ``İ`` -> ``i̇``) after it.
    """
    folded = _fold_once(_fold_once(raw).casefold())
    folded = "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")
    return folded.translate(_SEPARATORS)


def scope_skeleton(token: str) -> str:
    """A folded token as UTS #39 reads its ASCII letters (what fund-moving stems are sought in)."""
    return token.translate(_ASCII_SKELETON)


# Any token containing one of these stems is fund-moving, whatever the venue calls it.
_FORBIDDEN_STEMS = ("withdraw", "transfer", "wallet", "payout", "send", "move", "sweep", "deposit")
_FORBIDDEN_SKELETONS = tuple(scope_skeleton(normalize_scope_token(s)) for s in _FORBIDDEN_STEMS)


def normalize_scopes(
    raw_scopes: list[str], vocabulary: Mapping[str, frozenset[Scope]]
) -> frozenset[Scope]:
    """Map declared venue scopes to normalised scopes, refusing fund-moving ones.

    Raises:
        WithdrawalScopeRejected: any token is (or smells like) withdraw/transfer.
        UnknownScope: a token is not in the venue's vocabulary.
    """
    tokens = [normalize_scope_token(raw) for raw in raw_scopes]
    # Fund-moving scopes are refused first, whatever else the list holds.
    for index, token in enumerate(tokens):
        scopes = vocabulary.get(token)
        skeleton = scope_skeleton(token)
        if (scopes and scopes & FORBIDDEN_SCOPES) or any(
            s in skeleton for s in _FORBIDDEN_SKELETONS
        ):
            raise WithdrawalScopeRejected(
                "withdraw and transfer scopes are never accepted",
                metadata={"scopeIndex": str(index)},
            )
    result: set[Scope] = set()
    for index, token in enumerate(tokens):
        known = vocabulary.get(token)
        if known is None:
            raise UnknownScope(
                "scope is not in this venue's vocabulary", metadata={"scopeIndex": str(index)}
            )
        result |= known
    return frozenset(result)


def deny_endpoint(method: str, path: str) -> EndpointNotAllowed:
    """The error every venue raises for a blocked endpoint (path only, never query values)."""
    return EndpointNotAllowed(
        "endpoint is not on the venue's trading allow-list",
        metadata={"method": method.upper(), "path": path.split("?", 1)[0]},
    )
