"""Fan-out: many ``SignOrder`` items in one call, one admission and one group commit.

Each item goes through the single path's steps - the use state (from memory, or loaded; the
states a batch lacks are loaded in one hop to the storage pool), the checks and order policy,
the venue request and its signature (``HotSigner.prepare``) - and then *all* the batch's
pending writes (replay claims, venue nonces, one chained ``credential.use`` event per item) are
handed to the group committer as one bundle: one transaction, workspaces in ascending id order
(the global lock order, see ``storage.repositories.sign_path``), chain order per workspace in
request order. The response is built only after that transaction committed, so a caller never
holds a signature whose event is not durable, and a ``kill -9`` leaves every item whole (its
claim and its event) or absent - the whole first round of the batch together; items redone on a
fresh state (a revoke or freeze moved their workspace's epoch meanwhile) commit in a later
transaction of their own.

Items fail alone: a refusal (frozen workspace, revoked credential, ended context, policy,
replayed client order id, a workspace the caller may not see) is that item's result and is
audited exactly as a refused ``SignOrder``; the other items are signed. As on the single path, a
refusal computed from a cached state is confirmed on a fresh state first, a signature computed
from a state whose workspace epoch moved is dropped and redone from a fresh state, and items
whose state keeps moving fall back to the locked single-transaction path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

from vault_server.brokers.base import OrderSpec
from vault_server.core.errors import (
    ErrorKind,
    InternalError,
    InvalidArgument,
    RoutingContextRequired,
    VaultError,
)
from vault_server.domain import CallContext
from vault_server.orders import check_client_order_id
from vault_server.signing._batch import PendingUse, Stale, UseWritten
from vault_server.signing._hot_path import ATTEMPTS, HotSigner, Offload, Prepared
from vault_server.signing._hot_state import HotState, UseState
from vault_server.signing._refusal import Refusal
from vault_server.signing._service import Signed, SigningService, Use

# Items prepared on the event loop between two chances for other calls to run (a thousand
# items hold the loop for tens of milliseconds otherwise).
YIELD_EVERY = 64
SubmitAll = Callable[[Sequence[PendingUse]], Awaitable[list[UseWritten | Stale | BaseException]]]
Result = Signed | VaultError


@dataclass(frozen=True)
class BatchItem:
    """One order of a fan-out call, as its own ``SignOrder`` would carry it."""

    routing_context: str
    order: OrderSpec
    credential: str = ""
    reason: str = ""  # the item's own reason; empty: the call's


@dataclass
class _Call:
    """One fan-out call in progress: per item, its context, state's venue and result."""

    ctxs: list[CallContext]
    items: Sequence[BatchItem]
    results: list[Result | None]
    venues: list[str]
    ready: list[tuple[int, UseState, Prepared]] = field(default_factory=list)
    again: list[int] = field(default_factory=list)


class FanOut:
    """``BatchSignOrders`` (see module docstring)."""

    def __init__(
        self,
        signer: HotSigner,
        signing: SigningService,
        hot: HotState,
        submit_all: SubmitAll,
        offload: Offload,
        max_items: int,
    ) -> None:
        self._signer = signer
        self._signing = signing
        self._hot = hot
        self._submit_all = submit_all
        self._offload = offload
        self.max_items = max_items

    def check_count(self, n: int) -> None:
        """The size rule of every batch call (fan-out and ``BatchBeginRouting``)."""
        if not n:
            raise InvalidArgument("requests", "at least one item is required")
        if n > self.max_items:
            raise InvalidArgument(
                "requests", f"at most {self.max_items} items per call (signing.max_batch_items)"
            )

    async def sign(self, ctx: CallContext, items: Sequence[BatchItem]) -> list[Result]:
        """One result per item, in order: its signature (durable event) or its refusal."""
        self.check_count(len(items))
        by_reason = {ctx.reason: ctx}  # one context per distinct reason, not per item
        for it in items:
            if it.reason not in by_reason and it.reason:
                by_reason[it.reason] = replace(ctx, reason=it.reason)
        call = _Call(
            ctxs=[by_reason[it.reason] if it.reason else ctx for it in items],
            items=items,
            results=[None] * len(items),
            venues=["unknown"] * len(items),
        )
        todo: list[int] = []
        for i, item in enumerate(items):
            try:
                check_client_order_id(item.order)
                if not item.routing_context:
                    raise RoutingContextRequired("an active routing context is required to sign")
                todo.append(i)
            except VaultError as err:
                call.results[i] = err
        for _ in range(ATTEMPTS):
            if not todo:
                break
            todo = await self._round(call, todo)
        for i in todo:  # states that kept moving: the locked path, one item at a time
            call.results[i] = await self._locked(call.ctxs[i], items[i])
        final = [r if r is not None else InternalError("no outcome") for r in call.results]
        await self._account(call, final)
        return final

    async def _round(self, call: _Call, todo: list[int]) -> list[int]:
        """Prepare and commit ``todo``; returns the items to try again on fresh states."""
        call.ready, call.again = [], []
        states, cached = await self._states(call, todo)
        remote: list[int] = []
        for n, i in enumerate(todo, 1):
            state = states.get(i)
            if state is None:
                continue  # its load failed: its result holds why
            call.venues[i] = state.venue.value
            if self._signer.on_loop(state):
                self._prepare_one(call, i, state, i in cached)
            else:
                remote.append(i)
            if n % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # let other calls on this loop through meanwhile
        if remote:  # a remote KMS or an RSA key: off the loop, in one hop
            await self._offload(self._prepare_all, call, remote, states, cached)
        ready = sorted(call.ready, key=lambda r: r[0])  # chain order follows request order
        again = call.again
        if not ready:
            return sorted(again)
        outcomes = await self._submit_all([p.pending for _, _, p in ready])
        for (i, state, prepared), outcome in zip(ready, outcomes, strict=True):
            if isinstance(outcome, Stale):
                if outcome.epoch is None:
                    self._hot.invalidate([state.workspace_id])
                else:
                    self._hot.heard(state.workspace_id, outcome.epoch)
                again.append(i)
            elif isinstance(outcome, UseWritten):
                event = f"{state.workspace_name}/auditEvents/{outcome.seq}"
                call.results[i] = Signed(outcome.request, prepared.version, event)
            else:
                call.results[i] = _as_vault_error(outcome)
        return sorted(again)

    def _prepare_all(
        self, call: _Call, remote: list[int], states: dict[int, UseState], cached: set[int]
    ) -> None:
        for i in remote:
            self._prepare_one(call, i, states[i], i in cached)

    def _prepare_one(self, call: _Call, i: int, state: UseState, cached: bool) -> None:
        item = call.items[i]
        try:
            prepared = self._signer.prepare(
                call.ctxs[i], state, item.routing_context, item.credential, item.order, False
            )
        except VaultError as err:
            if cached:
                # A refusal from memory is confirmed on a fresh state (as on the single path).
                self._hot.forget(item.routing_context)
                call.again.append(i)
            else:
                call.results[i] = err
            return
        call.ready.append((i, state, prepared))

    async def _states(self, call: _Call, todo: list[int]) -> tuple[dict[int, UseState], set[int]]:
        """Each item's use state: from memory, or all the missing ones loaded in one hop."""
        states: dict[int, UseState] = {}
        missing: list[int] = []
        for i in todo:
            state = self._hot.get(call.items[i].routing_context)
            if state is None:
                missing.append(i)
            else:
                states[i] = state
        cached = set(states)
        if missing:
            loaded = await self._offload(self._load, call, missing)
            for i, got in loaded.items():
                if isinstance(got, VaultError):
                    call.results[i] = got
                else:
                    states[i] = got
                    self._hot.put(got)
        return states, cached

    def _load(self, call: _Call, missing: list[int]) -> dict[int, UseState | VaultError]:
        out: dict[int, UseState | VaultError] = {}
        by_ctx: dict[int, list[int]] = {}  # the owner check is per caller: per context object
        for i in missing:
            by_ctx.setdefault(id(call.ctxs[i]), []).append(i)
        for indexes in by_ctx.values():
            ctx = call.ctxs[indexes[0]]
            names = sorted({call.items[i].routing_context for i in indexes})
            loaded = self._signing.load_states(ctx, names)
            for i in indexes:
                out[i] = loaded.get(call.items[i].routing_context) or InternalError("not loaded")
        return out

    async def _locked(self, ctx: CallContext, item: BatchItem) -> Result:
        try:
            use: Use = await self._offload(
                self._signing.use_locked, ctx, item.routing_context, item.credential, item.order,
                proxy=False,
            )  # fmt: skip
        except VaultError as err:
            return err
        return Signed(use.request, use.version, use.audit_event)

    async def _account(self, call: _Call, results: list[Result]) -> None:
        """Count every item and audit every refusal (in one hop to the storage pool)."""
        refused: list[int] = []
        for i, result in enumerate(results):
            if isinstance(result, Signed):
                self._signer.count(call.venues[i], "signed")
                continue
            failed = result.kind in (ErrorKind.DATA_LOSS, ErrorKind.UNAVAILABLE)
            self._signer.count(call.venues[i], "failed" if failed else "refused")
            refused.append(i)
        if refused:
            await self._offload(self._audit_refusals, call, results, refused)

    def _audit_refusals(self, call: _Call, results: list[Result], refused: list[int]) -> None:
        refusals = []
        for i in refused:
            err, item = results[i], call.items[i]
            assert isinstance(err, VaultError)
            refusals.append(
                Refusal(call.ctxs[i], item.routing_context, item.credential, item.order, err)
            )
        self._signing.refused_all(refusals, proxy=False)


def _as_vault_error(exc: BaseException) -> VaultError:
    if isinstance(exc, VaultError):
        return exc
    return InternalError("the signature could not be committed")
