import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AuditEvent(_message.Message):
    __slots__ = ("name", "sequence", "event_time", "workspace", "credential", "action", "outcome", "actor", "peer", "reason", "routing_context", "request_id", "method", "error_reason", "details", "prev_hash", "hash")
    class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OUTCOME_UNSPECIFIED: _ClassVar[AuditEvent.Outcome]
        OUTCOME_SUCCESS: _ClassVar[AuditEvent.Outcome]
        OUTCOME_DENIED: _ClassVar[AuditEvent.Outcome]
        OUTCOME_FAILED: _ClassVar[AuditEvent.Outcome]
    OUTCOME_UNSPECIFIED: AuditEvent.Outcome
    OUTCOME_SUCCESS: AuditEvent.Outcome
    OUTCOME_DENIED: AuditEvent.Outcome
    OUTCOME_FAILED: AuditEvent.Outcome
    class DetailsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ROUTING_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    ERROR_REASON_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    PREV_HASH_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    name: str
    sequence: int
    event_time: _timestamp_pb2.Timestamp
    workspace: str
    credential: str
    action: str
    outcome: AuditEvent.Outcome
    actor: Actor
    peer: str
    reason: str
    routing_context: str
    request_id: str
    method: str
    error_reason: str
    details: _containers.ScalarMap[str, str]
    prev_hash: str
    hash: str
    def __init__(self, name: _Optional[str] = ..., sequence: _Optional[int] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., workspace: _Optional[str] = ..., credential: _Optional[str] = ..., action: _Optional[str] = ..., outcome: _Optional[_Union[AuditEvent.Outcome, str]] = ..., actor: _Optional[_Union[Actor, _Mapping]] = ..., peer: _Optional[str] = ..., reason: _Optional[str] = ..., routing_context: _Optional[str] = ..., request_id: _Optional[str] = ..., method: _Optional[str] = ..., error_reason: _Optional[str] = ..., details: _Optional[_Mapping[str, str]] = ..., prev_hash: _Optional[str] = ..., hash: _Optional[str] = ...) -> None: ...

class Actor(_message.Message):
    __slots__ = ("type", "id", "on_behalf_of")
    class Type(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        TYPE_UNSPECIFIED: _ClassVar[Actor.Type]
        TYPE_USER: _ClassVar[Actor.Type]
        TYPE_SERVICE: _ClassVar[Actor.Type]
        TYPE_SYSTEM: _ClassVar[Actor.Type]
    TYPE_UNSPECIFIED: Actor.Type
    TYPE_USER: Actor.Type
    TYPE_SERVICE: Actor.Type
    TYPE_SYSTEM: Actor.Type
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    ON_BEHALF_OF_FIELD_NUMBER: _ClassVar[int]
    type: Actor.Type
    id: str
    on_behalf_of: str
    def __init__(self, type: _Optional[_Union[Actor.Type, str]] = ..., id: _Optional[str] = ..., on_behalf_of: _Optional[str] = ...) -> None: ...
