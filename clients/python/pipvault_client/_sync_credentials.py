"""Synchronous CredentialService methods."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Unpack

from pipsync.vault.v1 import credential_pb2, trading_pb2
from pipsync.vault.v1 import credential_service_pb2 as cred_svc

from pipvault_client import _requests as build
from pipvault_client import _rpc
from pipvault_client._base import CallOptions
from pipvault_client._requests import BrokerLike, EnvironmentLike, KeyAlgorithmLike
from pipvault_client._sync_core import SyncTransport


class CredentialMethods(SyncTransport):
    """Onboarding and lifecycle of broker credentials (metadata out, never secrets)."""

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
    ) -> credential_pb2.Credential:
        """Imports a credential into ``parent`` and returns its metadata. ``material`` is sent
        once and never kept, logged or echoed. ``reason`` is required."""
        request = build.create_credential(
            parent=parent,
            credential_id=credential_id,
            broker=broker,
            environment=environment,
            key_algorithm=key_algorithm,
            material=material,
            scopes=scopes,
            reason=reason,
            display_name=display_name,
            acknowledge_single_permission_tier=acknowledge_single_permission_tier,
            policy=policy,
            attest_on_create=attest_on_create,
        )
        return self._unary(_rpc.CREATE_CREDENTIAL, request, options, reason).credential

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
    ) -> cred_svc.GenerateCredentialKeyResponse:
        """The vault generates a key pair; returns the PENDING credential and the public key to
        upload to the venue. ``reason`` is required."""
        request = build.generate_credential_key(
            parent=parent,
            credential_id=credential_id,
            broker=broker,
            environment=environment,
            key_algorithm=key_algorithm,
            scopes=scopes,
            reason=reason,
            display_name=display_name,
            policy=policy,
        )
        return self._unary(_rpc.GENERATE_CREDENTIAL_KEY, request, options, reason)

    def attach_credential_api_key(
        self,
        name: str,
        api_key: str,
        reason: str = "",
        etag: str = "",
        **options: Unpack[CallOptions],
    ) -> credential_pb2.Credential:
        """Attaches the venue's API key id to a vault-generated key. ``reason`` is required."""
        request = cred_svc.AttachCredentialApiKeyRequest(
            name=name, api_key=api_key, etag=etag, reason=reason
        )
        return self._unary(_rpc.ATTACH_CREDENTIAL_API_KEY, request, options, reason).credential

    def get_credential(
        self, name: str, **options: Unpack[CallOptions]
    ) -> credential_pb2.Credential:
        """Returns a credential's metadata."""
        request = cred_svc.GetCredentialRequest(name=name)
        return self._unary(_rpc.GET_CREDENTIAL, request, options).credential

    def list_credentials(
        self,
        parent: str,
        page_size: int = 0,
        broker: BrokerLike = trading_pb2.BROKER_UNSPECIFIED,
        show_revoked: bool = False,
        **options: Unpack[CallOptions],
    ) -> Iterator[credential_pb2.Credential]:
        """Iterates over a workspace's credentials (metadata only), following page tokens."""
        size = build.page_size(page_size)
        return self._paginate(
            _rpc.LIST_CREDENTIALS,
            lambda token: build.list_credentials(parent, size, broker, show_revoked, token),
            lambda resp: (resp.credentials, resp.next_page_token),
            options,
        )

    def rotate_credential(
        self,
        name: str,
        material: credential_pb2.SecretMaterial | None = None,
        reason: str = "",
        generate_key: bool = False,
        etag: str = "",
        **options: Unpack[CallOptions],
    ) -> cred_svc.RotateCredentialResponse:
        """Adds a PENDING version from ``material`` (or, with ``generate_key``, a new key pair
        whose public key is in the response). ``reason`` is required."""
        request = build.rotate_credential(name, material, reason, generate_key, etag)
        return self._unary(_rpc.ROTATE_CREDENTIAL, request, options, reason)

    def promote_credential_version(
        self, name: str, reason: str = "", etag: str = "", **options: Unpack[CallOptions]
    ) -> credential_pb2.Credential:
        """Makes the PENDING version ``name`` (``.../versions/{n}``) CURRENT. ``reason`` is
        required."""
        request = cred_svc.PromoteCredentialVersionRequest(name=name, etag=etag, reason=reason)
        return self._unary(_rpc.PROMOTE_CREDENTIAL_VERSION, request, options, reason).credential

    def revoke_credential(
        self, name: str, reason: str = "", etag: str = "", **options: Unpack[CallOptions]
    ) -> credential_pb2.Credential:
        """Stops all use at once and destroys every ciphertext. ``reason`` is required."""
        request = cred_svc.RevokeCredentialRequest(name=name, etag=etag, reason=reason)
        return self._unary(_rpc.REVOKE_CREDENTIAL, request, options, reason).credential

    def attest_credential_permissions(
        self, name: str, reason: str = "", **options: Unpack[CallOptions]
    ) -> cred_svc.AttestCredentialPermissionsResponse:
        """Asks the venue what the key may really do (a read outside a routing context: it
        pages the on-call). ``reason`` is required."""
        request = cred_svc.AttestCredentialPermissionsRequest(name=name, reason=reason)
        return self._unary(_rpc.ATTEST_CREDENTIAL_PERMISSIONS, request, options, reason)

    def update_credential_policy(
        self,
        name: str,
        policy: credential_pb2.OrderPolicy,
        reason: str = "",
        etag: str = "",
        **options: Unpack[CallOptions],
    ) -> credential_pb2.Credential:
        """Replaces the credential's order policy as a whole. ``reason`` is required."""
        request = cred_svc.UpdateCredentialPolicyRequest(
            name=name, policy=policy, etag=etag, reason=reason
        )
        return self._unary(_rpc.UPDATE_CREDENTIAL_POLICY, request, options, reason).credential
