"""The asyncio client."""

from __future__ import annotations

from pipvault_client._aio_admin import AdminMethods
from pipvault_client._aio_credentials import CredentialMethods
from pipvault_client._aio_signing import SigningMethods

__all__ = ["AsyncVaultClient"]


class AsyncVaultClient(AdminMethods, CredentialMethods, SigningMethods):
    """asyncio (``grpc.aio``) client with the same methods and guarantees as
    :class:`~pipvault_client.VaultClient`: unary methods are coroutines; list and stream
    methods return async iterators (``async for``).

    Create it inside a running event loop; use ``async with AsyncVaultClient(...) as vault:``
    or ``await vault.close()``.
    """
