"""Read side of custody: the metadata view of a credential (never secret bytes)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from vault_server.audit import AuditLog, AuditRecord
from vault_server.brokers.base import Venue
from vault_server.brokers.registry import adapter_for
from vault_server.core.errors import NotFound
from vault_server.domain import (
    CallContext,
    CredentialRef,
    PageTokens,
    credential_name,
    parse_credential,
    parse_workspace,
)
from vault_server.storage.database import Database
from vault_server.storage.models import Credential, CredentialVersion, VenueSession, Workspace
from vault_server.storage.repositories import credentials as repo
from vault_server.workspaces import load_visible

SINGLE_TIER_WARNING = (
    "single permission tier: this broker cannot issue a narrower key, so the stored key can do "
    "everything the account can (for some brokers including moving funds). The vault refuses "
    "fund-moving endpoints, but the key itself is not limited."
)
OKX_PASSPHRASE_WARNING = (
    "OKX's protocol sends the passphrase in the OK-ACCESS-PASSPHRASE header of every request, so "
    "a request from SignOrder carries it to the router (the HMAC secret never leaves). Use "
    "ExecuteOrder to keep the passphrase inside the vault too."
)
BITGET_PASSPHRASE_WARNING = (
    "Bitget's protocol sends the passphrase in the ACCESS-PASSPHRASE header of every request, so "
    "a request from SignOrder carries it to the router (the HMAC secret never leaves). Use "
    "ExecuteOrder to keep the passphrase inside the vault too."
)
PROXY_ONLY_WARNING = (
    "proxy only: this broker's scheme puts the secret on the wire, so the vault sends requests "
    "itself (ExecuteOrder) and never returns a signed request."
)


@dataclass(frozen=True)
class CredentialView:
    workspace: str  # workspace resource id
    credential: Credential
    versions: list[CredentialVersion]
    proxy_only: bool
    lifecycle: str = "static"  # brokers.lifecycle.Lifecycle value
    session: VenueSession | None = None  # the venue session row (session/OAuth lifecycles)

    @property
    def name(self) -> str:
        return credential_name(self.workspace, self.credential.resource_id)

    @property
    def warnings(self) -> list[str]:
        out = []
        if self.credential.single_permission_tier:
            out.append(SINGLE_TIER_WARNING)
        if self.proxy_only:
            out.append(PROXY_ONLY_WARNING)
        elif self.credential.broker == Venue.OKX.value:
            out.append(OKX_PASSPHRASE_WARNING)
        elif self.credential.broker == Venue.BITGET.value:
            out.append(BITGET_PASSPHRASE_WARNING)
        return out


def load_credential(
    session: Session, ctx: CallContext, ref: CredentialRef, *, lock: bool = False
) -> tuple[Workspace, Credential]:
    ws = load_visible(session, ctx, ref.workspace)
    cred = repo.by_resource_id(session, ws.id, ref.credential, lock=lock)
    if cred is None:
        raise NotFound(credential_name(ref.workspace, ref.credential))
    return ws, cred


def view_of(
    session: Session, ws: Workspace, cred: Credential, *, coinbase_strict: bool
) -> CredentialView:
    adapter = adapter_for(Venue(cred.broker), coinbase_strict=coinbase_strict)
    row = None
    if adapter.session is not None:
        row = session.get(VenueSession, (cred.id, cred.current_version))
    return CredentialView(
        workspace=ws.resource_id,
        credential=cred,
        versions=repo.versions(session, cred),
        proxy_only=adapter.proxy_only,
        lifecycle=adapter.lifecycle.value,
        session=row,
    )


@dataclass(frozen=True)
class CredentialPage:
    views: list[CredentialView]
    next_page_token: str


class CredentialQueries:
    """Get and List: metadata only, each call audited (``credential.get`` / ``credential.list``)."""

    def __init__(
        self, db: Database, audit: AuditLog, pages: PageTokens, *, coinbase_strict: bool = False
    ) -> None:
        self._db = db
        self._audit = audit
        self._pages = pages
        self._strict = coinbase_strict

    def get(self, ctx: CallContext, name: str) -> CredentialView:
        ref = parse_credential("name", name)
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            ws, cred = load_credential(session, ctx, ref)
            self._audit.append(
                session,
                ctx,
                AuditRecord(
                    action="credential.get",
                    workspace_id=ws.id,
                    workspace=f"workspaces/{ws.resource_id}",
                    credential=credential_name(ws.resource_id, cred.resource_id),
                ),
            )
            return view_of(session, ws, cred, coinbase_strict=self._strict)

    def list(
        self,
        ctx: CallContext,
        parent: str,
        page_size: int,
        page_token: str,
        broker: Venue | None,
        show_revoked: bool,
    ) -> CredentialPage:
        ws_id = parse_workspace("parent", parent)
        size = self._pages.page_size(page_size)
        params = {
            "rpc": "ListCredentials",
            "parent": ws_id,
            "broker": broker.value if broker else "",
            "revoked": show_revoked,
        }
        after = self._pages.resume(page_token, params)
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            ws = load_visible(session, ctx, ws_id)
            rows = list(
                repo.page(
                    session,
                    ws.id,
                    after=after,
                    limit=size + 1,
                    broker=broker.value if broker else None,
                    show_revoked=show_revoked,
                )
            )
            more, rows = len(rows) > size, rows[:size]
            views = [view_of(session, ws, c, coinbase_strict=self._strict) for c in rows]
            self._audit.append(
                session,
                ctx,
                AuditRecord(
                    action="credential.list",
                    workspace_id=ws.id,
                    workspace=f"workspaces/{ws.resource_id}",
                    details={"count": str(len(views))},
                ),
            )
        token = self._pages.issue(rows[-1].resource_id, params) if more and rows else ""
        return CredentialPage(views, token)
