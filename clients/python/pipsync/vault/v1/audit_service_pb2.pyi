import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from pipsync.vault.v1 import audit_pb2 as _audit_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AuditFilter(_message.Message):
    __slots__ = ("workspace", "credential", "actor", "action", "outcome", "start_time", "end_time")
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    credential: str
    actor: str
    action: str
    outcome: _audit_pb2.AuditEvent.Outcome
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, workspace: _Optional[str] = ..., credential: _Optional[str] = ..., actor: _Optional[str] = ..., action: _Optional[str] = ..., outcome: _Optional[_Union[_audit_pb2.AuditEvent.Outcome, str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListAuditEventsRequest(_message.Message):
    __slots__ = ("filter", "page_size", "page_token")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    filter: AuditFilter
    page_size: int
    page_token: str
    def __init__(self, filter: _Optional[_Union[AuditFilter, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAuditEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_audit_pb2.AuditEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[_audit_pb2.AuditEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class StreamAuditEventsRequest(_message.Message):
    __slots__ = ("filter", "follow", "resume_after")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    RESUME_AFTER_FIELD_NUMBER: _ClassVar[int]
    filter: AuditFilter
    follow: bool
    resume_after: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, filter: _Optional[_Union[AuditFilter, _Mapping]] = ..., follow: _Optional[bool] = ..., resume_after: _Optional[_Iterable[str]] = ...) -> None: ...

class StreamAuditEventsResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: _audit_pb2.AuditEvent
    def __init__(self, event: _Optional[_Union[_audit_pb2.AuditEvent, _Mapping]] = ...) -> None: ...

class VerifyAuditLogRequest(_message.Message):
    __slots__ = ("workspace",)
    WORKSPACE_FIELD_NUMBER: _ClassVar[int]
    workspace: str
    def __init__(self, workspace: _Optional[str] = ...) -> None: ...

class VerifyAuditLogResponse(_message.Message):
    __slots__ = ("intact", "chains_checked", "events_checked", "first_bad_event", "problem", "detail", "findings", "checkpoints")
    INTACT_FIELD_NUMBER: _ClassVar[int]
    CHAINS_CHECKED_FIELD_NUMBER: _ClassVar[int]
    EVENTS_CHECKED_FIELD_NUMBER: _ClassVar[int]
    FIRST_BAD_EVENT_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINTS_FIELD_NUMBER: _ClassVar[int]
    intact: bool
    chains_checked: int
    events_checked: int
    first_bad_event: str
    problem: str
    detail: str
    findings: _containers.RepeatedCompositeFieldContainer[AuditFinding]
    checkpoints: CheckpointSummary
    def __init__(self, intact: _Optional[bool] = ..., chains_checked: _Optional[int] = ..., events_checked: _Optional[int] = ..., first_bad_event: _Optional[str] = ..., problem: _Optional[str] = ..., detail: _Optional[str] = ..., findings: _Optional[_Iterable[_Union[AuditFinding, _Mapping]]] = ..., checkpoints: _Optional[_Union[CheckpointSummary, _Mapping]] = ...) -> None: ...

class AuditFinding(_message.Message):
    __slots__ = ("event", "problem", "detail")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    event: str
    problem: str
    detail: str
    def __init__(self, event: _Optional[str] = ..., problem: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class CheckpointSummary(_message.Message):
    __slots__ = ("source", "valid", "invalid", "latest_time")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    VALID_FIELD_NUMBER: _ClassVar[int]
    INVALID_FIELD_NUMBER: _ClassVar[int]
    LATEST_TIME_FIELD_NUMBER: _ClassVar[int]
    source: str
    valid: int
    invalid: int
    latest_time: str
    def __init__(self, source: _Optional[str] = ..., valid: _Optional[int] = ..., invalid: _Optional[int] = ..., latest_time: _Optional[str] = ...) -> None: ...
