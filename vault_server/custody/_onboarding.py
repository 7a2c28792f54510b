"""Custody: onboarding, vault-generated keys, rotation, promotion, revocation, policy.

Withdraw/transfer scopes are refused before anything is stored; single-tier brokers need an
explicit acknowledgement. Sealing (which may call a KMS) happens between two short transactions,
never inside one, so a slow KMS holds no database lock. Every change writes its audit event in
the transaction that makes the change.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from vault_server.audit import AuditLog, credential_record
from vault_server.brokers.base import Environment, KeyAlgorithm, Venue, normalize_scopes
from vault_server.brokers.lifecycle import SessionTokens
from vault_server.brokers.registry import adapter_for
from vault_server.core.clock import Clock
from vault_server.core.errors import (
    AlreadyExists,
    CredentialRevoked,
    InvalidArgument,
    KeyGenerationNotSupported,
    OperationNotSupported,
    SingleTierNotAcknowledged,
)
from vault_server.core.secret import Secret
from vault_server.crypto.envelope import EnvelopeBinding
from vault_server.custody._attestation import Attestor
from vault_server.custody._keygen import generate_key
from vault_server.custody._material import (
    MaterialInput,
    api_key_hint,
    for_exchange,
    seal_input,
    validate_material,
)
from vault_server.custody._session_seed import GrantExchange, seed_session, session_binding
from vault_server.custody._views import CredentialView, load_credential, view_of
from vault_server.domain import (
    CallContext,
    check_etag,
    check_id,
    credential_name,
    parse_credential,
    parse_workspace,
)
from vault_server.keys import KeyManager, Sealed
from vault_server.orders import OrderPolicy, validate_policy
from vault_server.storage.database import Database
from vault_server.storage.models import Credential, CredentialVersion, Workspace
from vault_server.storage.repositories import credentials as repo
from vault_server.workspaces import ensure_not_frozen, load_visible

PENDING, ACTIVE, QUARANTINED, REVOKED = "pending", "active", "quarantined", "revoked"


@dataclass(frozen=True)
class NewCredential:
    parent: str
    credential_id: str
    display_name: str
    venue: Venue
    environment: Environment
    algorithm: KeyAlgorithm
    scopes: list[str]
    policy: OrderPolicy
    material: MaterialInput | None = None
    acknowledge_single_tier: bool = False
    attest_on_create: bool = False


@dataclass(frozen=True)
class Generated:
    view: CredentialView
    public_key: str


class CredentialManager:
    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        keys: KeyManager,
        clock: Clock,
        *,
        coinbase_strict: bool = False,
        attestor: Attestor | None = None,
        grant: GrantExchange | None = None,
    ) -> None:
        self._grant = grant
        self._attestor = attestor
        self._db = db
        self._audit = audit
        self._keys = keys
        self._clock = clock
        self._strict = coinbase_strict

    # --- helpers ---------------------------------------------------------------------------
    def _record(
        self, session: Session, ctx: CallContext, ws: Workspace, cred_id: str, action: str,
        **details: str,
    ) -> None:  # fmt: skip
        self._audit.append(session, ctx, credential_record(ws, cred_id, action, details=details))

    def _view(self, session: Session, ws: Workspace, cred: Credential) -> CredentialView:
        return view_of(session, ws, cred, coinbase_strict=self._strict)

    def _check_new(self, new: NewCredential) -> tuple[str, list[str]]:
        ws_id = parse_workspace("parent", new.parent)
        check_id("credential_id", new.credential_id)
        if len(new.display_name) > 200:
            raise InvalidArgument("display_name", "at most 200 characters")
        if len(new.scopes) > 32:
            raise InvalidArgument("scopes", "at most 32 scopes")
        adapter = adapter_for(new.venue, coinbase_strict=self._strict)
        if new.algorithm not in adapter.algorithms:
            raise InvalidArgument("key_algorithm", "this broker does not accept that key type")
        scopes = normalize_scopes(list(new.scopes), adapter.scope_vocabulary)
        if not scopes:
            raise InvalidArgument("scopes", "declare the scopes the key was created with")
        if adapter.single_permission_tier and not new.acknowledge_single_tier:
            raise SingleTierNotAcknowledged(
                "this broker has a single permission tier; set "
                "acknowledge_single_permission_tier to accept a full-trading key",
                metadata={"broker": new.venue.value},
            )
        validate_policy(new.policy)
        require_bounds_for_passwords(new.algorithm, new.policy)
        return ws_id, sorted(s.value for s in scopes)

    def _prepare(self, ctx: CallContext, ws_id: str, cred_id: str) -> Workspace:
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            ws = load_visible(session, ctx, ws_id)
            ensure_not_frozen(ws, self._clock.now())
            if repo.by_resource_id(session, ws.id, cred_id) is not None:
                raise AlreadyExists(credential_name(ws_id, cred_id))
        return ws

    def _exchange(
        self, ctx: CallContext, ws_id: str, uid: str, new: NewCredential
    ) -> tuple[SessionTokens, Sealed] | None:
        """OAuth consent: the vault exchanges the code itself, before anything is stored (a
        refused or failed exchange stores nothing), and seals the grant for the new version."""
        if new.algorithm is not KeyAlgorithm.OAUTH_CONSENT or new.material is None:
            return None
        if self._grant is None:
            raise OperationNotSupported("OAuth onboarding is not wired in this server")
        consent = for_exchange(new.material, new.venue, new.environment)
        tokens = self._grant(ctx, new.venue, new.environment, consent)
        sealed = self._keys.seal(Secret(tokens.to_json()), session_binding(ws_id, uid, 1))
        return tokens, sealed

    def _insert(
        self, ctx: CallContext, ws_id: str, new: NewCredential, scopes: list[str], uid: str,
        sealed: Sealed, hint: str, *, state: str, action: str,
        seed: tuple[SessionTokens, Sealed] | None = None,
    ) -> CredentialView:  # fmt: skip
        now = self._clock.now()
        adapter = adapter_for(new.venue, coinbase_strict=self._strict)
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            ws = load_visible(session, ctx, ws_id)
            ensure_not_frozen(ws, now)
            cred = Credential(
                id=uid, workspace_id=ws.id, resource_id=new.credential_id,
                display_name=new.display_name, broker=new.venue.value,
                environment=new.environment.value, key_algorithm=new.algorithm.value,
                state=state, api_key_hint=hint, scopes=scopes, venue_scopes=list(new.scopes),
                single_permission_tier=adapter.single_permission_tier,
                current_version=1 if state == ACTIVE else 0, policy=new.policy.to_json(),
                attestation=None, create_time=now, update_time=now, revision=1,
            )  # fmt: skip
            repo.insert(session, cred, credential_name(ws_id, new.credential_id))
            session.add(
                CredentialVersion(
                    id=str(uuid.uuid4()),
                    workspace_id=ws.id,
                    credential_id=uid,
                    version=1,
                    state="current" if state == ACTIVE else PENDING,
                    api_key_hint=hint,
                    envelope=sealed.blob,
                    provider_id=sealed.provider_id,
                    kek_version=sealed.kek_version,
                    create_time=now,
                    promote_time=now if state == ACTIVE else None,
                )
            )
            session.flush()
            if seed is not None:
                seed_session(session, ws.id, uid, 1, seed[1], seed[0], now)
                self._record(session, ctx, ws, new.credential_id, "credential.session.login",
                             kind="authorization_code", version="1")  # fmt: skip
            self._record(
                session, ctx, ws, new.credential_id, action,
                broker=new.venue.value, environment=new.environment.value,
                scopes=",".join(scopes), version="1",
                kek=f"{sealed.provider_id}:{sealed.kek_version}",
            )  # fmt: skip
            return self._view(session, ws, cred)

    # --- onboarding ------------------------------------------------------------------------
    def create(self, ctx: CallContext, new: NewCredential) -> CredentialView:
        ws_id, scopes = self._check_new(new)
        if new.material is None:
            raise InvalidArgument("material", "is required")
        validate_material(new.venue, new.algorithm, new.material)
        ws = self._prepare(ctx, ws_id, new.credential_id)
        uid = str(uuid.uuid4())
        seed = self._exchange(ctx, ws.id, uid, new)
        sealed = self._keys.seal(seal_input(new.material), EnvelopeBinding(ws.id, uid, 1))
        view = self._insert(
            ctx, ws_id, new, scopes, uid, sealed, api_key_hint(new.material.hint_source),
            state=ACTIVE, action="credential.create", seed=seed,
        )  # fmt: skip
        if new.attest_on_create and self._attestor is not None:
            # A clean key stays ACTIVE; one that can move funds is QUARANTINED at once.
            view = self._attestor.attest(ctx, view.name).view
        return view

    def generate(self, ctx: CallContext, new: NewCredential) -> Generated:
        ws_id, scopes = self._check_new(new)
        adapter = adapter_for(new.venue, coinbase_strict=self._strict)
        if new.algorithm not in adapter.generatable:
            raise KeyGenerationNotSupported(
                "this broker does not accept uploaded public keys of that type",
                metadata={"broker": new.venue.value, "keyAlgorithm": new.algorithm.value},
            )
        ws = self._prepare(ctx, ws_id, new.credential_id)
        key = generate_key(new.algorithm)
        material = MaterialInput("", Secret(b""), Secret(b""), key.private_pem, "")
        uid = str(uuid.uuid4())
        sealed = self._keys.seal(seal_input(material), EnvelopeBinding(ws.id, uid, 1))
        view = self._insert(
            ctx, ws_id, new, scopes, uid, sealed, "", state=PENDING,
            action="credential.generate_key",
        )  # fmt: skip
        return Generated(view, key.public_pem)

    def update_policy(
        self, ctx: CallContext, name: str, policy: OrderPolicy, etag: str
    ) -> CredentialView:
        ref = parse_credential("name", name)
        validate_policy(policy)
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            ws, cred = load_credential(session, ctx, ref, lock=True)
            check_etag(etag, cred.id, cred.revision)
            if cred.state == REVOKED:
                raise CredentialRevoked("the credential is revoked", metadata={"credential": name})
            require_bounds_for_passwords(KeyAlgorithm(cred.key_algorithm), policy)
            cred.policy = policy.to_json()
            cred.update_time = self._clock.now()
            cred.revision += 1
            self._record(session, ctx, ws, cred.resource_id, "credential.policy_update")
            return self._view(session, ws, cred)


def require_bounds_for_passwords(algorithm: KeyAlgorithm, policy: OrderPolicy) -> None:
    """A credential holding an account password can trade anything the account can: it must
    name the symbols it may trade and cap each order's size (a leaked trade-only key was enough
    to drain 3Commas users by trading into illiquid markets)."""
    if algorithm is not KeyAlgorithm.SESSION_LOGIN:
        return
    if not policy.allowed_symbols:
        raise InvalidArgument(
            "policy.allowed_symbols", "a password-holding credential needs a symbol allow-list"
        )
    if not policy.max_quantity:
        raise InvalidArgument(
            "policy.max_quantity", "a password-holding credential needs a size cap"
        )
