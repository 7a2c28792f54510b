"""The synchronous client."""

from __future__ import annotations

from pipvault_client._admin import AdminMethods
from pipvault_client._credentials import CredentialMethods
from pipvault_client._signing import SigningMethods
from pipvault_client._sync_transport import SyncTransport

__all__ = ["VaultClient"]


class VaultClient(AdminMethods, CredentialMethods, SigningMethods, SyncTransport):
    """Synchronous client for the pipvault gRPC API: one method per RPC of WorkspaceService,
    CredentialService, SigningService, AuditService and KeyService.

    Every call carries a deadline (the client's ``timeout``, default 10 s, or the call's
    ``timeout=``), an ``x-request-id`` (random unless ``request_id=`` is given), the bearer
    token, and for mutating or credential-touching RPCs the required ``reason`` (checked before
    anything is sent, and also sent as ``x-pipvault-reason``). Only read-only RPCs are retried,
    on UNAVAILABLE (and RESOURCE_EXHAUSTED/CONCURRENCY_LIMITED), within the deadline. Failures
    raise :class:`~pipvault_client.VaultClientError` subclasses.

    Args:
        address: ``unix:///abs/path.sock`` or ``host:port``; plaintext only to Unix sockets and
            loopback, anything else needs ``tls``.
        token: bearer token, sent as ``authorization: Bearer <token>``; never in reprs or logs.
        tls: CA bundle, client certificate and key, server name override.
        timeout: default deadline of each call, in seconds.
        retry: retry policy of read-only RPCs (``RetryPolicy.disabled()`` turns it off).
        on_behalf_of: user the calling service acts for (``x-pipvault-on-behalf-of``).

    Use it as a context manager (``with VaultClient(...) as vault:``) or call :meth:`close`.
    """
