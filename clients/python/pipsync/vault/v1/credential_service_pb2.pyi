import datetime

from pipsync.vault.v1 import credential_pb2 as _credential_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from pipsync.vault.v1 import trading_pb2 as _trading_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResetCredentialSessionRequest(_message.Message):
    __slots__ = ("name", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ResetCredentialSessionResponse(_message.Message):
    __slots__ = ("credential",)
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    credential: _credential_pb2.Credential
    def __init__(self, credential: _Optional[_Union[_credential_pb2.Credential, _Mapping]] = ...) -> None: ...

class PlatformApplication(_message.Message):
    __slots__ = ("name", "broker", "environment", "client_id_hint", "version", "update_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BROKER_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_HINT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    broker: _trading_pb2.Broker
    environment: _trading_pb2.Environment
    client_id_hint: str
    version: int
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., broker: _Optional[_Union[_trading_pb2.Broker, str]] = ..., environment: _Optional[_Union[_trading_pb2.Environment, str]] = ..., client_id_hint: _Optional[str] = ..., version: _Optional[int] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SetPlatformApplicationRequest(_message.Message):
    __slots__ = ("broker", "environment", "client_id", "client_secret", "reason")
    BROKER_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_SECRET_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    broker: _trading_pb2.Broker
    environment: _trading_pb2.Environment
    client_id: str
    client_secret: str
    reason: str
    def __init__(self, broker: _Optional[_Union[_trading_pb2.Broker, str]] = ..., environment: _Optional[_Union[_trading_pb2.Environment, str]] = ..., client_id: _Optional[str] = ..., client_secret: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class SetPlatformApplicationResponse(_message.Message):
    __slots__ = ("platform_application",)
    PLATFORM_APPLICATION_FIELD_NUMBER: _ClassVar[int]
    platform_application: PlatformApplication
    def __init__(self, platform_application: _Optional[_Union[PlatformApplication, _Mapping]] = ...) -> None: ...

class ListPlatformApplicationsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPlatformApplicationsResponse(_message.Message):
    __slots__ = ("platform_applications",)
    PLATFORM_APPLICATIONS_FIELD_NUMBER: _ClassVar[int]
    platform_applications: _containers.RepeatedCompositeFieldContainer[PlatformApplication]
    def __init__(self, platform_applications: _Optional[_Iterable[_Union[PlatformApplication, _Mapping]]] = ...) -> None: ...

class CreateCredentialRequest(_message.Message):
    __slots__ = ("parent", "credential_id", "display_name", "broker", "environment", "key_algorithm", "material", "scopes", "acknowledge_single_permission_tier", "policy", "attest_on_create", "reason")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    BROKER_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    KEY_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    MATERIAL_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGE_SINGLE_PERMISSION_TIER_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    ATTEST_ON_CREATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    parent: str
    credential_id: str
    display_name: str
    broker: _trading_pb2.Broker
    environment: _trading_pb2.Environment
    key_algorithm: _trading_pb2.KeyAlgorithm
    material: _credential_pb2.SecretMaterial
    scopes: _containers.RepeatedScalarFieldContainer[str]
    acknowledge_single_permission_tier: bool
    policy: _credential_pb2.OrderPolicy
    attest_on_create: bool
    reason: str
    def __init__(self, parent: _Optional[str] = ..., credential_id: _Optional[str] = ..., display_name: _Optional[str] = ..., broker: _Optional[_Union[_trading_pb2.Broker, str]] = ..., environment: _Optional[_Union[_trading_pb2.Environment, str]] = ..., key_algorithm: _Optional[_Union[_trading_pb2.KeyAlgorithm, str]] = ..., material: _Optional[_Union[_credential_pb2.SecretMaterial, _Mapping]] = ..., scopes: _Optional[_Iterable[str]] = ..., acknowledge_single_permission_tier: _Optional[bool] = ..., policy: _Optional[_Union[_credential_pb2.OrderPolicy, _Mapping]] = ..., attest_on_create: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class CreateCredentialResponse(_message.Message):
    __slots__ = ("credential",)
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    credential: _credential_pb2.Credential
    def __init__(self, credential: _Optional[_Union[_credential_pb2.Credential, _Mapping]] = ...) -> None: ...

class GenerateCredentialKeyRequest(_message.Message):
    __slots__ = ("parent", "credential_id", "display_name", "broker", "environment", "key_algorithm", "scopes", "policy", "reason")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    BROKER_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    KEY_ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    parent: str
    credential_id: str
    display_name: str
    broker: _trading_pb2.Broker
    environment: _trading_pb2.Environment
    key_algorithm: _trading_pb2.KeyAlgorithm
    scopes: _containers.RepeatedScalarFieldContainer[str]
    policy: _credential_pb2.OrderPolicy
    reason: str
    def __init__(self, parent: _Optional[str] = ..., credential_id: _Optional[str] = ..., display_name: _Optional[str] = ..., broker: _Optional[_Union[_trading_pb2.Broker, str]] = ..., environment: _Optional[_Union[_trading_pb2.Environment, str]] = ..., key_algorithm: _Optional[_Union[_trading_pb2.KeyAlgorithm, str]] = ..., scopes: _Optional[_Iterable[str]] = ..., policy: _Optional[_Union[_credential_pb2.OrderPolicy, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class GenerateCredentialKeyResponse(_message.Message):
    __slots__ = ("credential", "public_key")
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    credential: _credential_pb2.Credential
    public_key: str
    def __init__(self, credential: _Optional[_Union[_credential_pb2.Credential, _Mapping]] = ..., public_key: _Optional[str] = ...) -> None: ...

class AttachCredentialApiKeyRequest(_message.Message):
    __slots__ = ("name", "api_key", "etag", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    api_key: str
    etag: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., api_key: _Optional[str] = ..., etag: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class AttachCredentialApiKeyResponse(_message.Message):
    __slots__ = ("credential",)
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    credential: _credential_pb2.Credential
    def __init__(self, credential: _Optional[_Union[_credential_pb2.Credential, _Mapping]] = ...) -> None: ...

class GetCredentialRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetCredentialResponse(_message.Message):
    __slots__ = ("credential",)
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    credential: _credential_pb2.Credential
    def __init__(self, credential: _Optional[_Union[_credential_pb2.Credential, _Mapping]] = ...) -> None: ...

class ListCredentialsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token", "broker", "show_revoked")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    BROKER_FIELD_NUMBER: _ClassVar[int]
    SHOW_REVOKED_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    broker: _trading_pb2.Broker
    show_revoked: bool
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., broker: _Optional[_Union[_trading_pb2.Broker, str]] = ..., show_revoked: _Optional[bool] = ...) -> None: ...

class ListCredentialsResponse(_message.Message):
    __slots__ = ("credentials", "next_page_token")
    CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    credentials: _containers.RepeatedCompositeFieldContainer[_credential_pb2.Credential]
    next_page_token: str
    def __init__(self, credentials: _Optional[_Iterable[_Union[_credential_pb2.Credential, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RotateCredentialRequest(_message.Message):
    __slots__ = ("name", "material", "generate_key", "etag", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MATERIAL_FIELD_NUMBER: _ClassVar[int]
    GENERATE_KEY_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    material: _credential_pb2.SecretMaterial
    generate_key: bool
    etag: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., material: _Optional[_Union[_credential_pb2.SecretMaterial, _Mapping]] = ..., generate_key: _Optional[bool] = ..., etag: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RotateCredentialResponse(_message.Message):
    __slots__ = ("credential", "version", "public_key")
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    credential: _credential_pb2.Credential
    version: _credential_pb2.CredentialVersion
    public_key: str
    def __init__(self, credential: _Optional[_Union[_credential_pb2.Credential, _Mapping]] = ..., version: _Optional[_Union[_credential_pb2.CredentialVersion, _Mapping]] = ..., public_key: _Optional[str] = ...) -> None: ...

class PromoteCredentialVersionRequest(_message.Message):
    __slots__ = ("name", "etag", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    etag: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., etag: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class PromoteCredentialVersionResponse(_message.Message):
    __slots__ = ("credential",)
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    credential: _credential_pb2.Credential
    def __init__(self, credential: _Optional[_Union[_credential_pb2.Credential, _Mapping]] = ...) -> None: ...

class RevokeCredentialRequest(_message.Message):
    __slots__ = ("name", "etag", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    etag: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., etag: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RevokeCredentialResponse(_message.Message):
    __slots__ = ("credential",)
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    credential: _credential_pb2.Credential
    def __init__(self, credential: _Optional[_Union[_credential_pb2.Credential, _Mapping]] = ...) -> None: ...

class AttestCredentialPermissionsRequest(_message.Message):
    __slots__ = ("name", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class AttestCredentialPermissionsResponse(_message.Message):
    __slots__ = ("attestation", "credential")
    ATTESTATION_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    attestation: _credential_pb2.Attestation
    credential: _credential_pb2.Credential
    def __init__(self, attestation: _Optional[_Union[_credential_pb2.Attestation, _Mapping]] = ..., credential: _Optional[_Union[_credential_pb2.Credential, _Mapping]] = ...) -> None: ...

class UpdateCredentialPolicyRequest(_message.Message):
    __slots__ = ("name", "policy", "etag", "reason")
    NAME_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    name: str
    policy: _credential_pb2.OrderPolicy
    etag: str
    reason: str
    def __init__(self, name: _Optional[str] = ..., policy: _Optional[_Union[_credential_pb2.OrderPolicy, _Mapping]] = ..., etag: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class UpdateCredentialPolicyResponse(_message.Message):
    __slots__ = ("credential",)
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    credential: _credential_pb2.Credential
    def __init__(self, credential: _Optional[_Union[_credential_pb2.Credential, _Mapping]] = ...) -> None: ...
