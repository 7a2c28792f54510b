import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
from pipsync.vault.v1 import trading_pb2 as _trading_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RoutingContext(_message.Message):
    __slots__ = ("name", "credential", "strategy_id", "owner", "state", "create_time", "expire_time", "end_time")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[RoutingContext.State]
        STATE_ACTIVE: _ClassVar[RoutingContext.State]
        STATE_ENDED: _ClassVar[RoutingContext.State]
        STATE_EXPIRED: _ClassVar[RoutingContext.State]
    STATE_UNSPECIFIED: RoutingContext.State
    STATE_ACTIVE: RoutingContext.State
    STATE_ENDED: RoutingContext.State
    STATE_EXPIRED: RoutingContext.State
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    credential: str
    strategy_id: str
    owner: str
    state: RoutingContext.State
    create_time: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., credential: _Optional[str] = ..., strategy_id: _Optional[str] = ..., owner: _Optional[str] = ..., state: _Optional[_Union[RoutingContext.State, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class BeginRoutingRequest(_message.Message):
    __slots__ = ("credential", "strategy_id", "ttl", "reason")
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_ID_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    credential: str
    strategy_id: str
    ttl: _duration_pb2.Duration
    reason: str
    def __init__(self, credential: _Optional[str] = ..., strategy_id: _Optional[str] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class BeginRoutingResponse(_message.Message):
    __slots__ = ("routing_context",)
    ROUTING_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    routing_context: RoutingContext
    def __init__(self, routing_context: _Optional[_Union[RoutingContext, _Mapping]] = ...) -> None: ...

class BatchBeginRoutingRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[BeginRoutingRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[BeginRoutingRequest, _Mapping]]] = ...) -> None: ...

class BatchBeginRoutingResult(_message.Message):
    __slots__ = ("routing_context", "error")
    ROUTING_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    routing_context: RoutingContext
    error: _status_pb2.Status
    def __init__(self, routing_context: _Optional[_Union[RoutingContext, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class BatchBeginRoutingResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[BatchBeginRoutingResult]
    def __init__(self, results: _Optional[_Iterable[_Union[BatchBeginRoutingResult, _Mapping]]] = ...) -> None: ...

class RenewRoutingRequest(_message.Message):
    __slots__ = ("name", "ttl", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    ttl: _duration_pb2.Duration
    reason: str
    def __init__(self, name: _Optional[str] = ..., ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class RenewRoutingResponse(_message.Message):
    __slots__ = ("routing_context",)
    ROUTING_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    routing_context: RoutingContext
    def __init__(self, routing_context: _Optional[_Union[RoutingContext, _Mapping]] = ...) -> None: ...

class EndRoutingRequest(_message.Message):
    __slots__ = ("name", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class EndRoutingResponse(_message.Message):
    __slots__ = ("routing_context",)
    ROUTING_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    routing_context: RoutingContext
    def __init__(self, routing_context: _Optional[_Union[RoutingContext, _Mapping]] = ...) -> None: ...

class SignOrderRequest(_message.Message):
    __slots__ = ("routing_context", "order", "reason", "credential")
    ROUTING_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    routing_context: str
    order: _trading_pb2.Order
    reason: str
    credential: str
    def __init__(self, routing_context: _Optional[str] = ..., order: _Optional[_Union[_trading_pb2.Order, _Mapping]] = ..., reason: _Optional[str] = ..., credential: _Optional[str] = ...) -> None: ...

class SignedRequest(_message.Message):
    __slots__ = ("method", "url", "headers", "body", "expire_time")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    method: str
    url: str
    headers: _containers.RepeatedCompositeFieldContainer[_trading_pb2.HttpHeader]
    body: bytes
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, method: _Optional[str] = ..., url: _Optional[str] = ..., headers: _Optional[_Iterable[_Union[_trading_pb2.HttpHeader, _Mapping]]] = ..., body: _Optional[bytes] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SignOrderResponse(_message.Message):
    __slots__ = ("signed_request", "credential_version", "audit_event")
    SIGNED_REQUEST_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_VERSION_FIELD_NUMBER: _ClassVar[int]
    AUDIT_EVENT_FIELD_NUMBER: _ClassVar[int]
    signed_request: SignedRequest
    credential_version: int
    audit_event: str
    def __init__(self, signed_request: _Optional[_Union[SignedRequest, _Mapping]] = ..., credential_version: _Optional[int] = ..., audit_event: _Optional[str] = ...) -> None: ...

class BatchSignOrdersRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[SignOrderRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[SignOrderRequest, _Mapping]]] = ...) -> None: ...

class BatchSignOrdersResult(_message.Message):
    __slots__ = ("response", "error")
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    response: SignOrderResponse
    error: _status_pb2.Status
    def __init__(self, response: _Optional[_Union[SignOrderResponse, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class BatchSignOrdersResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[BatchSignOrdersResult]
    def __init__(self, results: _Optional[_Iterable[_Union[BatchSignOrdersResult, _Mapping]]] = ...) -> None: ...

class ExecuteOrderRequest(_message.Message):
    __slots__ = ("routing_context", "order", "reason", "credential")
    ROUTING_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    routing_context: str
    order: _trading_pb2.Order
    reason: str
    credential: str
    def __init__(self, routing_context: _Optional[str] = ..., order: _Optional[_Union[_trading_pb2.Order, _Mapping]] = ..., reason: _Optional[str] = ..., credential: _Optional[str] = ...) -> None: ...

class ExecuteOrderResponse(_message.Message):
    __slots__ = ("http_status", "headers", "body", "credential_version", "audit_event", "redacted", "body_truncated")
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_VERSION_FIELD_NUMBER: _ClassVar[int]
    AUDIT_EVENT_FIELD_NUMBER: _ClassVar[int]
    REDACTED_FIELD_NUMBER: _ClassVar[int]
    BODY_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    http_status: int
    headers: _containers.RepeatedCompositeFieldContainer[_trading_pb2.HttpHeader]
    body: bytes
    credential_version: int
    audit_event: str
    redacted: bool
    body_truncated: bool
    def __init__(self, http_status: _Optional[int] = ..., headers: _Optional[_Iterable[_Union[_trading_pb2.HttpHeader, _Mapping]]] = ..., body: _Optional[bytes] = ..., credential_version: _Optional[int] = ..., audit_event: _Optional[str] = ..., redacted: _Optional[bool] = ..., body_truncated: _Optional[bool] = ...) -> None: ...
