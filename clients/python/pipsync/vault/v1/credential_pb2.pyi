import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from pipsync.vault.v1 import trading_pb2 as _trading_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Credential(_message.Message):
    __slots__ = ("name", "uid", "display_name", "broker", "environment", "key_algorithm", "state", "api_key_hint", "scopes", "venue_scopes", "single_permission_tier", "warnings", "current_version", "versions", "policy", "attestation", "proxy_only", "create_time", "update_time", "revoke_time", "etag", "lifecycle", "session")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[Credential.State]
        STATE_PENDING: _ClassVar[Credential.State]
        STATE_ACTIVE: _ClassVar[Credential.State]
        STATE_QUARANTINED: _ClassVar[Credential.State]
        STATE_REVOKED: _ClassVar[Credential.State]
    STATE_UNSPECIFIED: Credential.State
    STATE_PENDING: Credential.State
    STATE_ACTIVE: Credential.State
    STATE_QUARANTINED: Credential.State
    STATE_REVOKED: Credential.State
    NAME_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    BROKER_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    KEY_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    API_KEY_HINT_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    VENUE_SCOPES_FIELD_NUMBER: _ClassVar[int]
    SINGLE_PERMISSION_TIER_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    ATTESTATION_FIELD_NUMBER: _ClassVar[int]
    PROXY_ONLY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REVOKE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    LIFECYCLE_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    uid: str
    display_name: str
    broker: _trading_pb2.Broker
    environment: _trading_pb2.Environment
    key_algorithm: _trading_pb2.KeyAlgorithm
    state: Credential.State
    api_key_hint: str
    scopes: _containers.RepeatedScalarFieldContainer[_trading_pb2.Scope]
    venue_scopes: _containers.RepeatedScalarFieldContainer[str]
    single_permission_tier: bool
    warnings: _containers.RepeatedScalarFieldContainer[str]
    current_version: int
    versions: _containers.RepeatedCompositeFieldContainer[CredentialVersion]
    policy: OrderPolicy
    attestation: Attestation
    proxy_only: bool
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    revoke_time: _timestamp_pb2.Timestamp
    etag: str
    lifecycle: _trading_pb2.CredentialLifecycle
    session: SessionStatus
    def __init__(self, name: _Optional[str] = ..., uid: _Optional[str] = ..., display_name: _Optional[str] = ..., broker: _Optional[_Union[_trading_pb2.Broker, str]] = ..., environment: _Optional[_Union[_trading_pb2.Environment, str]] = ..., key_algorithm: _Optional[_Union[_trading_pb2.KeyAlgorithm, str]] = ..., state: _Optional[_Union[Credential.State, str]] = ..., api_key_hint: _Optional[str] = ..., scopes: _Optional[_Iterable[_Union[_trading_pb2.Scope, str]]] = ..., venue_scopes: _Optional[_Iterable[str]] = ..., single_permission_tier: _Optional[bool] = ..., warnings: _Optional[_Iterable[str]] = ..., current_version: _Optional[int] = ..., versions: _Optional[_Iterable[_Union[CredentialVersion, _Mapping]]] = ..., policy: _Optional[_Union[OrderPolicy, _Mapping]] = ..., attestation: _Optional[_Union[Attestation, _Mapping]] = ..., proxy_only: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoke_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ..., lifecycle: _Optional[_Union[_trading_pb2.CredentialLifecycle, str]] = ..., session: _Optional[_Union[SessionStatus, _Mapping]] = ...) -> None: ...

class SessionStatus(_message.Message):
    __slots__ = ("state", "expire_time", "refresh_expire_time", "renew_time", "consecutive_failures", "next_attempt_time", "last_error_reason", "generation")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[SessionStatus.State]
        STATE_IDLE: _ClassVar[SessionStatus.State]
        STATE_ACTIVE: _ClassVar[SessionStatus.State]
        STATE_RENEWING: _ClassVar[SessionStatus.State]
        STATE_NEEDS_REAUTHORIZATION: _ClassVar[SessionStatus.State]
        STATE_LOCKED_OUT: _ClassVar[SessionStatus.State]
    STATE_UNSPECIFIED: SessionStatus.State
    STATE_IDLE: SessionStatus.State
    STATE_ACTIVE: SessionStatus.State
    STATE_RENEWING: SessionStatus.State
    STATE_NEEDS_REAUTHORIZATION: SessionStatus.State
    STATE_LOCKED_OUT: SessionStatus.State
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    REFRESH_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    RENEW_TIME_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_REASON_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    state: SessionStatus.State
    expire_time: _timestamp_pb2.Timestamp
    refresh_expire_time: _timestamp_pb2.Timestamp
    renew_time: _timestamp_pb2.Timestamp
    consecutive_failures: int
    next_attempt_time: _timestamp_pb2.Timestamp
    last_error_reason: str
    generation: int
    def __init__(self, state: _Optional[_Union[SessionStatus.State, str]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., refresh_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., renew_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., consecutive_failures: _Optional[int] = ..., next_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_error_reason: _Optional[str] = ..., generation: _Optional[int] = ...) -> None: ...

class CredentialVersion(_message.Message):
    __slots__ = ("name", "version", "state", "api_key_hint", "kek_reference", "create_time", "promote_time", "destroy_time")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[CredentialVersion.State]
        STATE_PENDING: _ClassVar[CredentialVersion.State]
        STATE_CURRENT: _ClassVar[CredentialVersion.State]
        STATE_PREVIOUS: _ClassVar[CredentialVersion.State]
        STATE_DESTROYED: _ClassVar[CredentialVersion.State]
    STATE_UNSPECIFIED: CredentialVersion.State
    STATE_PENDING: CredentialVersion.State
    STATE_CURRENT: CredentialVersion.State
    STATE_PREVIOUS: CredentialVersion.State
    STATE_DESTROYED: CredentialVersion.State
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    API_KEY_HINT_FIELD_NUMBER: _ClassVar[int]
    KEK_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    PROMOTE_TIME_FIELD_NUMBER: _ClassVar[int]
    DESTROY_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    state: CredentialVersion.State
    api_key_hint: str
    kek_reference: str
    create_time: _timestamp_pb2.Timestamp
    promote_time: _timestamp_pb2.Timestamp
    destroy_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., state: _Optional[_Union[CredentialVersion.State, str]] = ..., api_key_hint: _Optional[str] = ..., kek_reference: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., promote_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., destroy_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SecretMaterial(_message.Message):
    __slots__ = ("api_key", "secret", "passphrase", "private_key", "account_id", "username", "server", "authorization_code", "redirect_uri")
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    PASSPHRASE_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_KEY_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    SERVER_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZATION_CODE_FIELD_NUMBER: _ClassVar[int]
    REDIRECT_URI_FIELD_NUMBER: _ClassVar[int]
    api_key: str
    secret: str
    passphrase: str
    private_key: str
    account_id: str
    username: str
    server: str
    authorization_code: str
    redirect_uri: str
    def __init__(self, api_key: _Optional[str] = ..., secret: _Optional[str] = ..., passphrase: _Optional[str] = ..., private_key: _Optional[str] = ..., account_id: _Optional[str] = ..., username: _Optional[str] = ..., server: _Optional[str] = ..., authorization_code: _Optional[str] = ..., redirect_uri: _Optional[str] = ...) -> None: ...

class OrderPolicy(_message.Message):
    __slots__ = ("allowed_symbols", "allowed_sides", "allowed_order_types", "max_quantity", "max_notional", "max_orders_per_interval", "rate_interval", "max_freshness")
    ALLOWED_SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_SIDES_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_ORDER_TYPES_FIELD_NUMBER: _ClassVar[int]
    MAX_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    MAX_NOTIONAL_FIELD_NUMBER: _ClassVar[int]
    MAX_ORDERS_PER_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    RATE_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    MAX_FRESHNESS_FIELD_NUMBER: _ClassVar[int]
    allowed_symbols: _containers.RepeatedScalarFieldContainer[str]
    allowed_sides: _containers.RepeatedScalarFieldContainer[_trading_pb2.OrderSide]
    allowed_order_types: _containers.RepeatedScalarFieldContainer[_trading_pb2.OrderType]
    max_quantity: str
    max_notional: str
    max_orders_per_interval: int
    rate_interval: _duration_pb2.Duration
    max_freshness: _duration_pb2.Duration
    def __init__(self, allowed_symbols: _Optional[_Iterable[str]] = ..., allowed_sides: _Optional[_Iterable[_Union[_trading_pb2.OrderSide, str]]] = ..., allowed_order_types: _Optional[_Iterable[_Union[_trading_pb2.OrderType, str]]] = ..., max_quantity: _Optional[str] = ..., max_notional: _Optional[str] = ..., max_orders_per_interval: _Optional[int] = ..., rate_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., max_freshness: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class Attestation(_message.Message):
    __slots__ = ("result", "scopes", "venue_fields", "attest_time")
    class Result(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        RESULT_UNSPECIFIED: _ClassVar[Attestation.Result]
        RESULT_CLEAN: _ClassVar[Attestation.Result]
        RESULT_EXCESSIVE: _ClassVar[Attestation.Result]
        RESULT_NOT_SUPPORTED: _ClassVar[Attestation.Result]
        RESULT_FAILED: _ClassVar[Attestation.Result]
    RESULT_UNSPECIFIED: Attestation.Result
    RESULT_CLEAN: Attestation.Result
    RESULT_EXCESSIVE: Attestation.Result
    RESULT_NOT_SUPPORTED: Attestation.Result
    RESULT_FAILED: Attestation.Result
    class VenueFieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    RESULT_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    VENUE_FIELDS_FIELD_NUMBER: _ClassVar[int]
    ATTEST_TIME_FIELD_NUMBER: _ClassVar[int]
    result: Attestation.Result
    scopes: _containers.RepeatedScalarFieldContainer[_trading_pb2.Scope]
    venue_fields: _containers.ScalarMap[str, str]
    attest_time: _timestamp_pb2.Timestamp
    def __init__(self, result: _Optional[_Union[Attestation.Result, str]] = ..., scopes: _Optional[_Iterable[_Union[_trading_pb2.Scope, str]]] = ..., venue_fields: _Optional[_Mapping[str, str]] = ..., attest_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
