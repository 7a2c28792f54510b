"""``vaultctl``: the admin CLI of the pipvault credential vault (gRPC only, via pipvault_client).

Run ``vaultctl --help``; the entry point is :func:`vaultctl.main.main`.
"""

from __future__ import annotations

__all__: list[str] = []
