from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Broker(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BROKER_UNSPECIFIED: _ClassVar[Broker]
    BROKER_BINANCE_SPOT: _ClassVar[Broker]
    BROKER_BINANCE_USDM: _ClassVar[Broker]
    BROKER_KRAKEN_SPOT: _ClassVar[Broker]
    BROKER_BYBIT: _ClassVar[Broker]
    BROKER_OKX: _ClassVar[Broker]
    BROKER_COINBASE_ADVANCED: _ClassVar[Broker]
    BROKER_OANDA: _ClassVar[Broker]
    BROKER_ALPACA: _ClassVar[Broker]
    BROKER_IG: _ClassVar[Broker]
    BROKER_DERIBIT: _ClassVar[Broker]
    BROKER_KUCOIN: _ClassVar[Broker]
    BROKER_BITGET: _ClassVar[Broker]
    BROKER_GATE: _ClassVar[Broker]
    BROKER_KRAKEN_FUTURES: _ClassVar[Broker]
    BROKER_HYPERLIQUID: _ClassVar[Broker]
    BROKER_CTRADER: _ClassVar[Broker]
    BROKER_TRADELOCKER: _ClassVar[Broker]
    BROKER_MATCH_TRADER: _ClassVar[Broker]
    BROKER_DXTRADE: _ClassVar[Broker]
    BROKER_METAAPI: _ClassVar[Broker]

class Environment(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENVIRONMENT_UNSPECIFIED: _ClassVar[Environment]
    ENVIRONMENT_LIVE: _ClassVar[Environment]
    ENVIRONMENT_PAPER: _ClassVar[Environment]
    ENVIRONMENT_TESTNET: _ClassVar[Environment]

class KeyAlgorithm(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    KEY_ALGORITHM_UNSPECIFIED: _ClassVar[KeyAlgorithm]
    KEY_ALGORITHM_HMAC_SHA256: _ClassVar[KeyAlgorithm]
    KEY_ALGORITHM_HMAC_SHA512: _ClassVar[KeyAlgorithm]
    KEY_ALGORITHM_ED25519: _ClassVar[KeyAlgorithm]
    KEY_ALGORITHM_RSA: _ClassVar[KeyAlgorithm]
    KEY_ALGORITHM_ECDSA_P256: _ClassVar[KeyAlgorithm]
    KEY_ALGORITHM_BEARER: _ClassVar[KeyAlgorithm]
    KEY_ALGORITHM_STATIC_HEADERS: _ClassVar[KeyAlgorithm]
    KEY_ALGORITHM_SESSION_LOGIN: _ClassVar[KeyAlgorithm]
    KEY_ALGORITHM_SECP256K1: _ClassVar[KeyAlgorithm]
    KEY_ALGORITHM_OAUTH_CONSENT: _ClassVar[KeyAlgorithm]

class CredentialLifecycle(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CREDENTIAL_LIFECYCLE_UNSPECIFIED: _ClassVar[CredentialLifecycle]
    CREDENTIAL_LIFECYCLE_STATIC: _ClassVar[CredentialLifecycle]
    CREDENTIAL_LIFECYCLE_PASSWORD_SESSION: _ClassVar[CredentialLifecycle]
    CREDENTIAL_LIFECYCLE_OAUTH_CONSENT: _ClassVar[CredentialLifecycle]
    CREDENTIAL_LIFECYCLE_DERIVED_TOKEN: _ClassVar[CredentialLifecycle]

class Scope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCOPE_UNSPECIFIED: _ClassVar[Scope]
    SCOPE_READ: _ClassVar[Scope]
    SCOPE_TRADE: _ClassVar[Scope]
    SCOPE_WITHDRAW: _ClassVar[Scope]
    SCOPE_TRANSFER: _ClassVar[Scope]

class OrderOperation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_OPERATION_UNSPECIFIED: _ClassVar[OrderOperation]
    ORDER_OPERATION_PLACE: _ClassVar[OrderOperation]
    ORDER_OPERATION_CANCEL: _ClassVar[OrderOperation]
    ORDER_OPERATION_AMEND: _ClassVar[OrderOperation]
    ORDER_OPERATION_QUERY_ORDER: _ClassVar[OrderOperation]
    ORDER_OPERATION_QUERY_OPEN_ORDERS: _ClassVar[OrderOperation]
    ORDER_OPERATION_QUERY_ACCOUNT: _ClassVar[OrderOperation]
    ORDER_OPERATION_CLOSE_POSITION: _ClassVar[OrderOperation]
    ORDER_OPERATION_AMEND_POSITION: _ClassVar[OrderOperation]
    ORDER_OPERATION_QUERY_POSITIONS: _ClassVar[OrderOperation]

class SizeUnit(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIZE_UNIT_UNSPECIFIED: _ClassVar[SizeUnit]
    SIZE_UNIT_BASE_UNITS: _ClassVar[SizeUnit]
    SIZE_UNIT_LOTS: _ClassVar[SizeUnit]
    SIZE_UNIT_CONTRACTS: _ClassVar[SizeUnit]

class OrderSide(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_SIDE_UNSPECIFIED: _ClassVar[OrderSide]
    ORDER_SIDE_BUY: _ClassVar[OrderSide]
    ORDER_SIDE_SELL: _ClassVar[OrderSide]

class OrderType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_TYPE_UNSPECIFIED: _ClassVar[OrderType]
    ORDER_TYPE_MARKET: _ClassVar[OrderType]
    ORDER_TYPE_LIMIT: _ClassVar[OrderType]
    ORDER_TYPE_STOP_LOSS: _ClassVar[OrderType]
    ORDER_TYPE_STOP_LIMIT: _ClassVar[OrderType]
    ORDER_TYPE_TAKE_PROFIT: _ClassVar[OrderType]
    ORDER_TYPE_TAKE_PROFIT_LIMIT: _ClassVar[OrderType]

class TimeInForce(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIME_IN_FORCE_UNSPECIFIED: _ClassVar[TimeInForce]
    TIME_IN_FORCE_GTC: _ClassVar[TimeInForce]
    TIME_IN_FORCE_IOC: _ClassVar[TimeInForce]
    TIME_IN_FORCE_FOK: _ClassVar[TimeInForce]
    TIME_IN_FORCE_GTD: _ClassVar[TimeInForce]
    TIME_IN_FORCE_DAY: _ClassVar[TimeInForce]
BROKER_UNSPECIFIED: Broker
BROKER_BINANCE_SPOT: Broker
BROKER_BINANCE_USDM: Broker
BROKER_KRAKEN_SPOT: Broker
BROKER_BYBIT: Broker
BROKER_OKX: Broker
BROKER_COINBASE_ADVANCED: Broker
BROKER_OANDA: Broker
BROKER_ALPACA: Broker
BROKER_IG: Broker
BROKER_DERIBIT: Broker
BROKER_KUCOIN: Broker
BROKER_BITGET: Broker
BROKER_GATE: Broker
BROKER_KRAKEN_FUTURES: Broker
BROKER_HYPERLIQUID: Broker
BROKER_CTRADER: Broker
BROKER_TRADELOCKER: Broker
BROKER_MATCH_TRADER: Broker
BROKER_DXTRADE: Broker
BROKER_METAAPI: Broker
ENVIRONMENT_UNSPECIFIED: Environment
ENVIRONMENT_LIVE: Environment
ENVIRONMENT_PAPER: Environment
ENVIRONMENT_TESTNET: Environment
KEY_ALGORITHM_UNSPECIFIED: KeyAlgorithm
KEY_ALGORITHM_HMAC_SHA256: KeyAlgorithm
KEY_ALGORITHM_HMAC_SHA512: KeyAlgorithm
KEY_ALGORITHM_ED25519: KeyAlgorithm
KEY_ALGORITHM_RSA: KeyAlgorithm
KEY_ALGORITHM_ECDSA_P256: KeyAlgorithm
KEY_ALGORITHM_BEARER: KeyAlgorithm
KEY_ALGORITHM_STATIC_HEADERS: KeyAlgorithm
KEY_ALGORITHM_SESSION_LOGIN: KeyAlgorithm
KEY_ALGORITHM_SECP256K1: KeyAlgorithm
KEY_ALGORITHM_OAUTH_CONSENT: KeyAlgorithm
CREDENTIAL_LIFECYCLE_UNSPECIFIED: CredentialLifecycle
CREDENTIAL_LIFECYCLE_STATIC: CredentialLifecycle
CREDENTIAL_LIFECYCLE_PASSWORD_SESSION: CredentialLifecycle
CREDENTIAL_LIFECYCLE_OAUTH_CONSENT: CredentialLifecycle
CREDENTIAL_LIFECYCLE_DERIVED_TOKEN: CredentialLifecycle
SCOPE_UNSPECIFIED: Scope
SCOPE_READ: Scope
SCOPE_TRADE: Scope
SCOPE_WITHDRAW: Scope
SCOPE_TRANSFER: Scope
ORDER_OPERATION_UNSPECIFIED: OrderOperation
ORDER_OPERATION_PLACE: OrderOperation
ORDER_OPERATION_CANCEL: OrderOperation
ORDER_OPERATION_AMEND: OrderOperation
ORDER_OPERATION_QUERY_ORDER: OrderOperation
ORDER_OPERATION_QUERY_OPEN_ORDERS: OrderOperation
ORDER_OPERATION_QUERY_ACCOUNT: OrderOperation
ORDER_OPERATION_CLOSE_POSITION: OrderOperation
ORDER_OPERATION_AMEND_POSITION: OrderOperation
ORDER_OPERATION_QUERY_POSITIONS: OrderOperation
SIZE_UNIT_UNSPECIFIED: SizeUnit
SIZE_UNIT_BASE_UNITS: SizeUnit
SIZE_UNIT_LOTS: SizeUnit
SIZE_UNIT_CONTRACTS: SizeUnit
ORDER_SIDE_UNSPECIFIED: OrderSide
ORDER_SIDE_BUY: OrderSide
ORDER_SIDE_SELL: OrderSide
ORDER_TYPE_UNSPECIFIED: OrderType
ORDER_TYPE_MARKET: OrderType
ORDER_TYPE_LIMIT: OrderType
ORDER_TYPE_STOP_LOSS: OrderType
ORDER_TYPE_STOP_LIMIT: OrderType
ORDER_TYPE_TAKE_PROFIT: OrderType
ORDER_TYPE_TAKE_PROFIT_LIMIT: OrderType
TIME_IN_FORCE_UNSPECIFIED: TimeInForce
TIME_IN_FORCE_GTC: TimeInForce
TIME_IN_FORCE_IOC: TimeInForce
TIME_IN_FORCE_FOK: TimeInForce
TIME_IN_FORCE_GTD: TimeInForce
TIME_IN_FORCE_DAY: TimeInForce

class ProtectiveLevel(_message.Message):
    __slots__ = ("price", "distance")
    PRICE_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    price: str
    distance: str
    def __init__(self, price: _Optional[str] = ..., distance: _Optional[str] = ...) -> None: ...

class Order(_message.Message):
    __slots__ = ("operation", "symbol", "side", "type", "quantity", "price", "stop_price", "time_in_force", "client_order_id", "venue_order_id", "extras", "quote_quantity", "stop_loss", "take_profit", "position_id", "size_unit")
    class ExtrasEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    STOP_PRICE_FIELD_NUMBER: _ClassVar[int]
    TIME_IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    VENUE_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    EXTRAS_FIELD_NUMBER: _ClassVar[int]
    QUOTE_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    STOP_LOSS_FIELD_NUMBER: _ClassVar[int]
    TAKE_PROFIT_FIELD_NUMBER: _ClassVar[int]
    POSITION_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_UNIT_FIELD_NUMBER: _ClassVar[int]
    operation: OrderOperation
    symbol: str
    side: OrderSide
    type: OrderType
    quantity: str
    price: str
    stop_price: str
    time_in_force: TimeInForce
    client_order_id: str
    venue_order_id: str
    extras: _containers.ScalarMap[str, str]
    quote_quantity: str
    stop_loss: ProtectiveLevel
    take_profit: ProtectiveLevel
    position_id: str
    size_unit: SizeUnit
    def __init__(self, operation: _Optional[_Union[OrderOperation, str]] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[OrderSide, str]] = ..., type: _Optional[_Union[OrderType, str]] = ..., quantity: _Optional[str] = ..., price: _Optional[str] = ..., stop_price: _Optional[str] = ..., time_in_force: _Optional[_Union[TimeInForce, str]] = ..., client_order_id: _Optional[str] = ..., venue_order_id: _Optional[str] = ..., extras: _Optional[_Mapping[str, str]] = ..., quote_quantity: _Optional[str] = ..., stop_loss: _Optional[_Union[ProtectiveLevel, _Mapping]] = ..., take_profit: _Optional[_Union[ProtectiveLevel, _Mapping]] = ..., position_id: _Optional[str] = ..., size_unit: _Optional[_Union[SizeUnit, str]] = ...) -> None: ...

class HttpHeader(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
