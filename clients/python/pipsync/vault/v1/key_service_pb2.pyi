import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class KekVersion(_message.Message):
    __slots__ = ("version", "state", "wrap_count", "wrap_limit", "ciphertext_count", "create_time")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[KekVersion.State]
        STATE_ACTIVE: _ClassVar[KekVersion.State]
        STATE_DECRYPT_ONLY: _ClassVar[KekVersion.State]
        STATE_RETIRED: _ClassVar[KekVersion.State]
    STATE_UNSPECIFIED: KekVersion.State
    STATE_ACTIVE: KekVersion.State
    STATE_DECRYPT_ONLY: KekVersion.State
    STATE_RETIRED: KekVersion.State
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    WRAP_COUNT_FIELD_NUMBER: _ClassVar[int]
    WRAP_LIMIT_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    version: int
    state: KekVersion.State
    wrap_count: int
    wrap_limit: int
    ciphertext_count: int
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, version: _Optional[int] = ..., state: _Optional[_Union[KekVersion.State, str]] = ..., wrap_count: _Optional[int] = ..., wrap_limit: _Optional[int] = ..., ciphertext_count: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class KeyProviderStatus(_message.Message):
    __slots__ = ("provider_id", "kind", "primary", "healthy", "versions")
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    provider_id: str
    kind: str
    primary: bool
    healthy: bool
    versions: _containers.RepeatedCompositeFieldContainer[KekVersion]
    def __init__(self, provider_id: _Optional[str] = ..., kind: _Optional[str] = ..., primary: _Optional[bool] = ..., healthy: _Optional[bool] = ..., versions: _Optional[_Iterable[_Union[KekVersion, _Mapping]]] = ...) -> None: ...

class GetKeyStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetKeyStatusResponse(_message.Message):
    __slots__ = ("providers",)
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    providers: _containers.RepeatedCompositeFieldContainer[KeyProviderStatus]
    def __init__(self, providers: _Optional[_Iterable[_Union[KeyProviderStatus, _Mapping]]] = ...) -> None: ...

class RotateKeyEncryptionKeyRequest(_message.Message):
    __slots__ = ("provider_id", "reason")
    PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    provider_id: str
    reason: str
    def __init__(self, provider_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RotateKeyEncryptionKeyResponse(_message.Message):
    __slots__ = ("provider", "new_version", "rewrapped")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    NEW_VERSION_FIELD_NUMBER: _ClassVar[int]
    REWRAPPED_FIELD_NUMBER: _ClassVar[int]
    provider: KeyProviderStatus
    new_version: int
    rewrapped: int
    def __init__(self, provider: _Optional[_Union[KeyProviderStatus, _Mapping]] = ..., new_version: _Optional[int] = ..., rewrapped: _Optional[int] = ...) -> None: ...

class MigrateKeysRequest(_message.Message):
    __slots__ = ("target_provider_id", "batch_size", "reason")
    TARGET_PROVIDER_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    target_provider_id: str
    batch_size: int
    reason: str
    def __init__(self, target_provider_id: _Optional[str] = ..., batch_size: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class MigrateKeysResponse(_message.Message):
    __slots__ = ("total", "migrated", "remaining", "done")
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    MIGRATED_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    total: int
    migrated: int
    remaining: int
    done: bool
    def __init__(self, total: _Optional[int] = ..., migrated: _Optional[int] = ..., remaining: _Optional[int] = ..., done: _Optional[bool] = ...) -> None: ...
