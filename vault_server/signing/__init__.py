"""Signing: routing contexts, the signing service, the hot path (cached use state,
group-committed audit events) and proxy-mode execution.
"""

from __future__ import annotations

from vault_server.signing._batch import PendingUse, SignBatch, Stale, UseWritten
from vault_server.signing._fan_out import BatchItem, FanOut
from vault_server.signing._hot_path import HotSigner
from vault_server.signing._hot_state import HotState
from vault_server.signing._routing import BeginItem, RoutingContexts, RoutingView
from vault_server.signing._service import Signed, SigningService

__all__ = [
    "BatchItem",
    "BeginItem",
    "FanOut",
    "HotSigner",
    "HotState",
    "PendingUse",
    "RoutingContexts",
    "RoutingView",
    "SignBatch",
    "Signed",
    "SigningService",
    "Stale",
    "UseWritten",
]
