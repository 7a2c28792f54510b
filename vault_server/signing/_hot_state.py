"""What a signature needs that rarely changes, served from memory.

A ``UseState`` is everything ``SignOrder`` checks before it signs - the routing context, its
workspace's freeze state, the credential's state, current version and envelope, its order policy -
read in one transaction together with the workspace's cache epoch (read *first*, so a change
committed during the read leaves the state with an older epoch, never a newer one).

``HotState`` keeps them by routing-context name. It drops a workspace's states as soon as it
hears the epoch moved (a commit in this process, a PostgreSQL notification or the polling
fallback), but correctness never rests on hearing it: the signing batch re-reads the epoch in the
transaction that makes the signature durable and refuses a signature computed from an older one.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from vault_server.brokers.base import Environment, KeyAlgorithm, Venue
from vault_server.orders import OrderPolicy
from vault_server.storage.models import Credential, RoutingContext, Workspace


@dataclass(frozen=True)
class UseState:
    epoch: int
    routing_context: str  # resource name
    owner: str
    rc_state: str
    rc_expire: dt.datetime
    workspace_id: str  # uuid
    workspace_resource: str
    ws_state: str
    ws_freeze_expire: dt.datetime | None
    credential_id: str
    credential_resource: str
    credential_state: str
    current_version: int
    venue: Venue
    environment: Environment
    algorithm: KeyAlgorithm
    policy: OrderPolicy
    envelope: bytes | None  # the current version's envelope (ciphertext only)

    @property
    def workspace_name(self) -> str:
        return f"workspaces/{self.workspace_resource}"

    @property
    def credential_name(self) -> str:
        return f"workspaces/{self.workspace_resource}/credentials/{self.credential_resource}"


def use_state(
    epoch: int, rc_name: str, ws: Workspace, cred: Credential, rc: RoutingContext,
    envelope: bytes | None,
) -> UseState:  # fmt: skip
    """The state of one routing context from its rows, read in one transaction after ``epoch``."""
    return UseState(
        epoch=epoch,
        routing_context=rc_name,
        owner=rc.owner,
        rc_state=rc.state,
        rc_expire=rc.expire_time,
        workspace_id=ws.id,
        workspace_resource=ws.resource_id,
        ws_state=ws.state,
        ws_freeze_expire=ws.freeze_expire_time,
        credential_id=cred.id,
        credential_resource=cred.resource_id,
        credential_state=cred.state,
        current_version=cred.current_version,
        venue=Venue(cred.broker),
        environment=Environment(cred.environment),
        algorithm=KeyAlgorithm(cred.key_algorithm),
        policy=OrderPolicy.from_json(cred.policy),
        envelope=envelope,
    )


class HotState:
    """Thread-safe map of routing-context name to ``UseState``, bounded in entries."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._max = max_entries
        self._states: OrderedDict[str, UseState] = OrderedDict()
        self._epochs: dict[str, int] = {}  # newest epoch heard of, per workspace
        self._by_ws: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def get(self, routing_context: str) -> UseState | None:
        with self._lock:
            state = self._states.get(routing_context)
            if state is None:
                return None
            if state.epoch < self._epochs.get(state.workspace_id, state.epoch):
                self._remove(routing_context)
                return None
            return state

    def put(self, state: UseState) -> None:
        with self._lock:
            if state.epoch < self._epochs.get(state.workspace_id, state.epoch):
                return  # already outdated
            self._remove(state.routing_context)
            self._states[state.routing_context] = state
            self._by_ws.setdefault(state.workspace_id, set()).add(state.routing_context)
            while len(self._states) > self._max:
                self._remove(next(iter(self._states)))

    def forget(self, routing_context: str) -> None:
        with self._lock:
            self._remove(routing_context)

    def heard(self, workspace_id: str, epoch: int) -> None:
        """The workspace's epoch is at least ``epoch`` (from the signing batch)."""
        with self._lock:
            if epoch > self._epochs.get(workspace_id, -1):
                self._epochs[workspace_id] = epoch
                self._drop(workspace_id, epoch)

    def invalidate(self, workspace_ids: Iterable[str] | None) -> None:
        """Forget the states of these workspaces (``None``: of every workspace)."""
        with self._lock:
            if workspace_ids is None:
                self._states.clear()
                self._by_ws.clear()
                return
            for ws in workspace_ids:
                self._drop(ws, None)

    def _drop(self, workspace_id: str, below: int | None) -> None:
        for k in list(self._by_ws.get(workspace_id, ())):
            if below is None or self._states[k].epoch < below:
                self._remove(k)

    def _remove(self, routing_context: str) -> None:
        state = self._states.pop(routing_context, None)
        if state is not None:
            names = self._by_ws.get(state.workspace_id)
            if names is not None:
                names.discard(routing_context)
                if not names:
                    del self._by_ws[state.workspace_id]

    def __len__(self) -> int:
        with self._lock:
            return len(self._states)
