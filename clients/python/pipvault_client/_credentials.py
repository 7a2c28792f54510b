"""CredentialService methods, written once for both clients."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Unpack

from pipsync.vault.v1 import credential_pb2, trading_pb2
from pipsync.vault.v1 import credential_service_pb2 as cred_svc

from pipvault_client import _requests as build
from pipvault_client import _rpc
from pipvault_client._base import CallOptions
from pipvault_client._calls import Pages, Unary, whole
from pipvault_client._methods import list_rpc, unary_rpc
from pipvault_client._requests import BrokerLike, EnvironmentLike, KeyAlgorithmLike
from pipvault_client._venues import broker_value


class CredentialMethods:
    """Onboarding and lifecycle of broker credentials (metadata out, never secrets)."""

    @unary_rpc
    def create_credential(
        self,
        parent: str,
        credential_id: str,
        *,
        broker: BrokerLike,
        environment: EnvironmentLike,
        key_algorithm: KeyAlgorithmLike,
        material: credential_pb2.SecretMaterial,
        scopes: Iterable[str],
        reason: str,
        display_name: str = "",
        acknowledge_single_permission_tier: bool = False,
        policy: credential_pb2.OrderPolicy | None = None,
        attest_on_create: bool = False,
        **options: Unpack[CallOptions],
    ) -> Unary[credential_pb2.Credential]:
        """Imports a credential into ``parent`` and returns its metadata. ``material`` is sent
        once and never kept, logged or echoed. ``reason`` is required."""
        build.check_material(material)
        request = cred_svc.CreateCredentialRequest(
            parent=parent,
            credential_id=credential_id,
            display_name=display_name,
            broker=broker_value(broker),
            environment=environment,
            key_algorithm=key_algorithm,
            material=material,
            scopes=build.strings(scopes, "scopes"),
            acknowledge_single_permission_tier=acknowledge_single_permission_tier,
            policy=policy,
            attest_on_create=attest_on_create,
            reason=reason,
        )
        return Unary(_rpc.CREATE_CREDENTIAL, request, _credential, options, reason)

    @unary_rpc
    def generate_credential_key(
        self,
        parent: str,
        credential_id: str,
        *,
        broker: BrokerLike,
        environment: EnvironmentLike,
        key_algorithm: KeyAlgorithmLike,
        scopes: Iterable[str],
        reason: str,
        display_name: str = "",
        policy: credential_pb2.OrderPolicy | None = None,
        **options: Unpack[CallOptions],
    ) -> Unary[cred_svc.GenerateCredentialKeyResponse]:
        """The vault generates a key pair; returns the PENDING credential and the public key to
        upload to the venue. ``reason`` is required."""
        request = cred_svc.GenerateCredentialKeyRequest(
            parent=parent,
            credential_id=credential_id,
            display_name=display_name,
            broker=broker_value(broker),
            environment=environment,
            key_algorithm=key_algorithm,
            scopes=build.strings(scopes, "scopes"),
            policy=policy,
            reason=reason,
        )
        return Unary(_rpc.GENERATE_CREDENTIAL_KEY, request, whole, options, reason)

    @unary_rpc
    def attach_credential_api_key(
        self,
        name: str,
        api_key: str,
        reason: str = "",
        etag: str = "",
        **options: Unpack[CallOptions],
    ) -> Unary[credential_pb2.Credential]:
        """Attaches the venue's API key id to a vault-generated key. ``reason`` is required."""
        request = cred_svc.AttachCredentialApiKeyRequest(
            name=name, api_key=api_key, etag=etag, reason=reason
        )
        return Unary(_rpc.ATTACH_CREDENTIAL_API_KEY, request, _credential, options, reason)

    @unary_rpc
    def get_credential(
        self, name: str, **options: Unpack[CallOptions]
    ) -> Unary[credential_pb2.Credential]:
        """Returns a credential's metadata."""
        request = cred_svc.GetCredentialRequest(name=name)
        return Unary(_rpc.GET_CREDENTIAL, request, _credential, options)

    @list_rpc
    def list_credentials(
        self,
        parent: str,
        page_size: int = 0,
        broker: BrokerLike = trading_pb2.BROKER_UNSPECIFIED,
        show_revoked: bool = False,
        **options: Unpack[CallOptions],
    ) -> Pages[credential_pb2.Credential]:
        """Iterates over a workspace's credentials (metadata only), following page tokens."""
        size = build.page_size(page_size)
        return Pages(
            _rpc.LIST_CREDENTIALS,
            lambda token: cred_svc.ListCredentialsRequest(
                parent=parent,
                page_size=size,
                page_token=token,
                broker=broker_value(broker),
                show_revoked=show_revoked,
            ),
            lambda resp: (resp.credentials, resp.next_page_token),
            options,
        )

    @unary_rpc
    def rotate_credential(
        self,
        name: str,
        material: credential_pb2.SecretMaterial | None = None,
        reason: str = "",
        generate_key: bool = False,
        etag: str = "",
        **options: Unpack[CallOptions],
    ) -> Unary[cred_svc.RotateCredentialResponse]:
        """Adds a PENDING version from ``material`` (or, with ``generate_key``, a new key pair
        whose public key is in the response). ``reason`` is required."""
        if material is not None:
            build.check_material(material)
        if (material is None) == (not generate_key):
            raise ValueError("rotate_credential needs exactly one of material or generate_key")
        request = cred_svc.RotateCredentialRequest(
            name=name, material=material, generate_key=generate_key, etag=etag, reason=reason
        )
        return Unary(_rpc.ROTATE_CREDENTIAL, request, whole, options, reason)

    @unary_rpc
    def promote_credential_version(
        self, name: str, reason: str = "", etag: str = "", **options: Unpack[CallOptions]
    ) -> Unary[credential_pb2.Credential]:
        """Makes the PENDING version ``name`` (``.../versions/{n}``) CURRENT. ``reason`` is
        required."""
        request = cred_svc.PromoteCredentialVersionRequest(name=name, etag=etag, reason=reason)
        return Unary(_rpc.PROMOTE_CREDENTIAL_VERSION, request, _credential, options, reason)

    @unary_rpc
    def revoke_credential(
        self, name: str, reason: str = "", etag: str = "", **options: Unpack[CallOptions]
    ) -> Unary[credential_pb2.Credential]:
        """Stops all use at once and destroys every ciphertext. ``reason`` is required."""
        request = cred_svc.RevokeCredentialRequest(name=name, etag=etag, reason=reason)
        return Unary(_rpc.REVOKE_CREDENTIAL, request, _credential, options, reason)

    @unary_rpc
    def attest_credential_permissions(
        self, name: str, reason: str = "", **options: Unpack[CallOptions]
    ) -> Unary[cred_svc.AttestCredentialPermissionsResponse]:
        """Asks the venue what the key may really do (a read outside a routing context: it
        pages the on-call). ``reason`` is required."""
        request = cred_svc.AttestCredentialPermissionsRequest(name=name, reason=reason)
        return Unary(_rpc.ATTEST_CREDENTIAL_PERMISSIONS, request, whole, options, reason)

    @unary_rpc
    def update_credential_policy(
        self,
        name: str,
        policy: credential_pb2.OrderPolicy,
        reason: str = "",
        etag: str = "",
        **options: Unpack[CallOptions],
    ) -> Unary[credential_pb2.Credential]:
        """Replaces the credential's order policy as a whole. ``reason`` is required."""
        request = cred_svc.UpdateCredentialPolicyRequest(
            name=name, policy=policy, etag=etag, reason=reason
        )
        return Unary(_rpc.UPDATE_CREDENTIAL_POLICY, request, _credential, options, reason)

    @unary_rpc
    def reset_credential_session(
        self, name: str, *, reason: str, **options: Unpack[CallOptions]
    ) -> Unary[credential_pb2.Credential]:
        """Drops the venue session the vault holds for a session or OAuth credential and clears
        a lockout or backoff, so the next order logs in afresh; returns the credential, its
        session now IDLE. It does not clear NEEDS_REAUTHORIZATION (that takes a new consent or
        password: ``rotate_credential``). Role ``security``. ``reason`` is required."""
        request = cred_svc.ResetCredentialSessionRequest(name=name, reason=reason)
        return Unary(_rpc.RESET_CREDENTIAL_SESSION, request, _credential, options, reason)

    @unary_rpc
    def set_platform_application(
        self,
        broker: BrokerLike,
        environment: EnvironmentLike,
        client_id: str,
        client_secret: str,
        *,
        reason: str,
        **options: Unpack[CallOptions],
    ) -> Unary[cred_svc.PlatformApplication]:
        """Stores (or replaces) the OAuth application the platform registered with a venue
        (e.g. the cTrader Open API client id and secret) and returns its metadata. The
        ``client_secret`` is sent once and never kept, logged or echoed. Role ``security``.
        ``reason`` is required."""
        build.check_secret(client_secret, "client_secret")
        if not isinstance(client_id, str) or not client_id.strip():
            raise ValueError("client_id is required")
        request = cred_svc.SetPlatformApplicationRequest(
            broker=broker_value(broker),
            environment=environment,
            client_id=client_id.strip(),
            client_secret=client_secret,
            reason=reason,
        )
        return Unary(
            _rpc.SET_PLATFORM_APPLICATION,
            request,
            lambda response: response.platform_application,
            options,
            reason,
        )

    @list_rpc
    def list_platform_applications(
        self, **options: Unpack[CallOptions]
    ) -> Pages[cred_svc.PlatformApplication]:
        """Iterates over the configured platform applications (metadata only, never a
        secret)."""
        return Pages(
            _rpc.LIST_PLATFORM_APPLICATIONS,
            lambda token: cred_svc.ListPlatformApplicationsRequest(),
            lambda resp: (resp.platform_applications, ""),
            options,
        )


_CredentialResponse = (
    cred_svc.CreateCredentialResponse
    | cred_svc.AttachCredentialApiKeyResponse
    | cred_svc.GetCredentialResponse
    | cred_svc.PromoteCredentialVersionResponse
    | cred_svc.RevokeCredentialResponse
    | cred_svc.UpdateCredentialPolicyResponse
    | cred_svc.ResetCredentialSessionResponse
)


def _credential(response: _CredentialResponse) -> credential_pb2.Credential:
    return response.credential
