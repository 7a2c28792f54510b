"""The asyncio client."""

from __future__ import annotations

from pipvault_client._admin import AdminMethods
from pipvault_client._aio_transport import AsyncTransport
from pipvault_client._credentials import CredentialMethods
from pipvault_client._signing import SigningMethods

__all__ = ["AsyncVaultClient"]


class AsyncVaultClient(AdminMethods, CredentialMethods, SigningMethods, AsyncTransport):
    """asyncio (``grpc.aio``) client with the same methods and guarantees as
    :class:`~pipvault_client.VaultClient`: unary methods are coroutines; list and stream
    methods return async iterators (``async for``).

    Create it inside a running event loop; use ``async with AsyncVaultClient(...) as vault:``
    or ``await vault.close()``.
    """
