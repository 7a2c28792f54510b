"""The durable half of a signature, written by the group committer.

Per workspace in the batch (in ascending id order: the global lock order of
``storage.repositories.sign_path``, so replicas' batches never deadlock): bind the transaction to
it (RLS), re-read its cache epoch with the workspace row shared (a revoke or freeze in flight is
waited for, never outrun), lock its audit chain head; then per signature: refuse it as
``Stale`` if it was computed from an older epoch (the caller reloads and tries again - this is
what makes a revoke, freeze or ended routing context stop the very next signature on every
replica), reserve the
venue nonce (and build the request that needs it), claim the client order id (rate limit and
replay window, exactly as before; a conflict fails only that signature, before it wrote
anything that matters), and append its ``credential.use`` event to the chain. One insert of all
events and one head update per chain finish the workspace.

Claims without a rate rule (the common case, and all of a fan-out) are inserted together in a
few multi-row statements after the workspace's requests are built; only an id already held (a
replay, or an expired claim to free) or a credential with a rate rule goes one by one, exactly
as before. Nonces are reserved before claims either way, so a refused claim never left a
nonce out of order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from vault_server.audit import GENESIS, AuditLog, AuditRecord
from vault_server.brokers.base import PreparedRequest
from vault_server.core.clock import Clock
from vault_server.core.errors import (
    AuditUnavailable,
    DuplicateClientOrderId,
    OrderPolicyViolation,
    VaultError,
)
from vault_server.domain import CallContext
from vault_server.storage.raw_sql import BatchConnection
from vault_server.storage.repositories import sign_path as repo


@dataclass(frozen=True)
class Claim:
    """A placement's client order id and the credential's rate rule."""

    client_order_id: str
    max_per_interval: int
    interval_s: float


@dataclass
class PendingUse:
    ctx: CallContext
    workspace_id: str
    epoch: int
    credential_id: str
    record: Callable[[PreparedRequest], AuditRecord]
    now: dt.datetime
    now_ms: int
    request: PreparedRequest | None = None  # built already, or
    build: Callable[[int], PreparedRequest] | None = field(default=None)  # built with the nonce
    claim: Claim | None = None


@dataclass(frozen=True)
class Stale:
    """The signature was computed from an older cache epoch: reload and try again."""

    epoch: int | None


@dataclass(frozen=True)
class UseWritten:
    request: PreparedRequest
    seq: int


Outcome = UseWritten | Stale | BaseException


class SignBatch:
    """``apply`` for the group committer (see module docstring)."""

    def __init__(self, audit: AuditLog, clock: Clock) -> None:
        self._audit = audit
        self._clock = clock

    def __call__(self, conn: BatchConnection, items: Sequence[PendingUse]) -> list[Outcome]:
        outcomes: list[Outcome] = [AuditUnavailable("not written")] * len(items)
        groups: dict[str, list[int]] = {}
        for i, item in enumerate(items):
            groups.setdefault(item.workspace_id, []).append(i)
        for ws_id in sorted(groups):
            indexes = groups[ws_id]
            repo.bind(conn, ws_id)
            epoch, head = repo.epoch_and_head(conn, ws_id)
            seq, prev = head if head is not None else (0, GENESIS)
            live: list[tuple[int, PreparedRequest]] = []
            for i in indexes:
                item = items[i]
                left = item.ctx.remaining()
                if left is not None and left <= 0:
                    outcomes[i] = AuditUnavailable("the request deadline passed before commit")
                    continue
                if epoch is None or epoch != item.epoch:
                    outcomes[i] = Stale(epoch)
                    continue
                try:
                    live.append((i, self._request(conn, item)))
                except VaultError as err:
                    outcomes[i] = err
            claimed = _claim_together(conn, items, live)
            rows = []
            for i, request in live:
                item = items[i]
                if item.claim is not None and i not in claimed:
                    try:
                        self._claim(conn, item, item.claim, request)
                    except VaultError as err:
                        outcomes[i] = err
                        continue
                values = self._audit.values_for(item.ctx, item.record(request), seq + 1, prev)
                seq, prev = values["seq"], values["hash"]
                rows.append(values)
                outcomes[i] = UseWritten(request, seq)
            if rows:
                repo.insert_events(conn, rows)
                repo.save_head(conn, ws_id, ws_id, seq, prev, new=head is None)
        return outcomes

    @staticmethod
    def _request(conn: BatchConnection, item: PendingUse) -> PreparedRequest:
        if item.request is not None:
            return item.request
        assert item.build is not None
        nonce = repo.next_nonce(conn, item.workspace_id, item.credential_id, item.now_ms)
        return item.build(nonce)

    @staticmethod
    def _claim(
        conn: BatchConnection, item: PendingUse, claim: Claim, request: PreparedRequest
    ) -> None:
        ws, cred, now = item.workspace_id, item.credential_id, item.now
        if claim.max_per_interval:
            since = now - dt.timedelta(seconds=claim.interval_s)
            if repo.orders_since(conn, ws, cred, since) >= claim.max_per_interval:
                raise OrderPolicyViolation(
                    "too many orders in the rate interval",
                    metadata={"rule": "max_orders_per_interval"},
                )
        expire = _expire(request, now)
        coid = claim.client_order_id
        if repo.insert_claim(conn, ws, cred, coid, now, expire):
            return  # the common case: a new id, one statement
        duplicate = DuplicateClientOrderId(
            "this client order id was already signed and is still fresh",
            metadata={"clientOrderId": claim.client_order_id},
        )
        existing = repo.find_claim(conn, ws, cred, coid)
        if existing is None or existing[1] > now:
            raise duplicate
        # Free the id but keep the row: that order still counts against the rate interval.
        repo.tombstone_claim(conn, existing[0])
        if not repo.insert_claim(conn, ws, cred, coid, now, expire):
            raise duplicate


def _expire(request: PreparedRequest, now: dt.datetime) -> dt.datetime:
    """Until when a claim holds its id: the request's own expiry (never before now)."""
    return max(dt.datetime.fromtimestamp(request.expire_at_ms / 1000, dt.UTC), now)


def _claim_together(
    conn: BatchConnection, items: Sequence[PendingUse], live: list[tuple[int, PreparedRequest]]
) -> set[int]:
    """Claim, in multi-row statements, the ids of ``live`` items that need no rate count: the
    indexes claimed. The rest (rate rules, an id twice in the batch, an id already held) are
    left to the one-by-one path, which settles them exactly as for a single signature."""
    rated = {
        items[i].credential_id
        for i, _ in live
        if (c := items[i].claim) is not None and c.max_per_interval
    }
    seen: set[tuple[str, str]] = set()
    chosen: list[tuple[int, tuple[str, str]]] = []
    rows: list[dict[str, object]] = []
    for i, request in live:
        item, claim = items[i], items[i].claim
        if claim is None or item.credential_id in rated:
            continue
        key = (item.credential_id, claim.client_order_id)
        if key in seen:
            continue
        seen.add(key)
        chosen.append((i, key))
        rows.append(
            {
                "workspace_id": item.workspace_id,
                "credential_id": item.credential_id,
                "client_order_id": claim.client_order_id,
                "sign_time": item.now,
                "expire_time": _expire(request, item.now),
            }
        )
    if len(rows) < 2:
        return set()  # one claim: the one-by-one statement is as cheap
    got = repo.insert_claims(conn, rows)
    return {i for i, key in chosen if key in got}
