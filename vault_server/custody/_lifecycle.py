"""Custody lifecycle after onboarding: attach a venue-assigned API key, rotate, promote, revoke,
and the grace-period job that destroys PREVIOUS versions (ciphertext set to NULL, not flagged).
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import delete
from sqlalchemy.orm import Session

from vault_server.audit import AuditLog, credential_record
from vault_server.brokers.base import Environment, KeyAlgorithm, Venue
from vault_server.brokers.lifecycle import SessionTokens
from vault_server.core.clock import Clock
from vault_server.core.errors import (
    CredentialRevoked,
    InvalidArgument,
    NotFound,
    OperationNotSupported,
    VersionNotPending,
)
from vault_server.core.secret import Secret
from vault_server.crypto.envelope import EnvelopeBinding
from vault_server.custody._keygen import generate_key
from vault_server.custody._material import (
    MaterialInput,
    api_key_hint,
    for_exchange,
    seal_input,
    validate_material,
    with_api_key,
)
from vault_server.custody._session_seed import GrantExchange, seed_session, session_binding
from vault_server.custody._views import CredentialView, load_credential, view_of
from vault_server.domain import (
    CallContext,
    check_etag,
    credential_name,
    parse_credential,
    parse_version,
    system_context,
)
from vault_server.keys import KeyManager, Sealed
from vault_server.orders import prune_claims
from vault_server.storage.database import Database
from vault_server.storage.models import Credential, CredentialVersion, VenueSession, Workspace
from vault_server.storage.repositories import credentials as repo
from vault_server.storage.repositories import workspaces as ws_repo
from vault_server.storage.tenant import bind_workspace
from vault_server.workspaces import ensure_not_frozen

CURRENT, PREVIOUS, PENDING, DESTROYED = "current", "previous", "pending", "destroyed"


class CredentialLifecycle:
    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        keys: KeyManager,
        clock: Clock,
        *,
        coinbase_strict: bool = False,
        grace_period_s: float = 86_400.0,
        grant: GrantExchange | None = None,
    ) -> None:
        self._grant = grant
        self._db = db
        self._audit = audit
        self._keys = keys
        self._clock = clock
        self._strict = coinbase_strict
        self._grace = dt.timedelta(seconds=grace_period_s)

    def _record(
        self, session: Session, ctx: CallContext, ws: Workspace, cred: Credential, action: str,
        **details: str,
    ) -> None:  # fmt: skip
        record = credential_record(ws, cred.resource_id, action, details=details)
        self._audit.append(session, ctx, record)

    def _usable(self, cred: Credential, name: str) -> None:
        if cred.state == "revoked":
            raise CredentialRevoked("the credential is revoked", metadata={"credential": name})

    # --- attach ----------------------------------------------------------------------------
    def attach_api_key(
        self, ctx: CallContext, name: str, api_key: str, etag: str
    ) -> CredentialView:
        ref = parse_credential("name", name)
        if not api_key or len(api_key) > 256 or any(not 32 <= ord(c) < 127 for c in api_key):
            raise InvalidArgument("api_key", "must be 1-256 printable ASCII characters")
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            ws, cred = load_credential(session, ctx, ref)
            check_etag(etag, cred.id, cred.revision)
            self._usable(cred, name)
            ensure_not_frozen(ws, self._clock.now())
            waiting = [
                v for v in repo.versions(session, cred) if v.state == PENDING and not v.api_key_hint
            ]
            target = waiting[0] if waiting else None
            if target is None or target.envelope is None:
                raise VersionNotPending("no version of this credential is waiting for an API key")
            binding = EnvelopeBinding(ws.id, cred.id, target.version)
            blob = target.envelope
            agent_key = cred.key_algorithm == KeyAlgorithm.SECP256K1.value
            number, revision = target.version, cred.revision
        # Re-seal outside any transaction: the private key gains its API key id.
        plaintext = self._keys.open(blob, binding)
        sealed = self._keys.seal(with_api_key(plaintext, api_key, agent_key=agent_key), binding)
        now = self._clock.now()
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            ws, cred = load_credential(session, ctx, ref, lock=True)
            version = repo.version(session, cred, number, lock=True)
            if cred.revision != revision or version is None or version.envelope != blob:
                check_etag("stale", cred.id, cred.revision)
            assert version is not None
            version.envelope, version.provider_id = sealed.blob, sealed.provider_id
            version.kek_version, version.api_key_hint = sealed.kek_version, api_key_hint(api_key)
            details = {"version": str(number)}
            if cred.current_version == 0:
                version.state, version.promote_time = CURRENT, now
                cred.current_version, cred.state = number, "active"
                cred.api_key_hint = version.api_key_hint
                details["promoted"] = "true"
            cred.update_time, cred.revision = now, cred.revision + 1
            self._record(session, ctx, ws, cred, "credential.attach_api_key", **details)
            return view_of(session, ws, cred, coinbase_strict=self._strict)

    # --- rotate / promote / revoke ---------------------------------------------------------
    def rotate(
        self, ctx: CallContext, name: str, material: MaterialInput | None, generate: bool, etag: str
    ) -> tuple[CredentialView, CredentialVersion, str]:
        ref = parse_credential("name", name)
        if generate == (material is not None):
            raise InvalidArgument("material", "give new material or set generate_key, not both")
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            ws, cred = load_credential(session, ctx, ref)
            check_etag(etag, cred.id, cred.revision)
            self._usable(cred, name)
            ensure_not_frozen(ws, self._clock.now())
            number = max((v.version for v in repo.versions(session, cred)), default=0) + 1
            venue, algorithm, env = Venue(cred.broker), cred.key_algorithm, cred.environment
        alg = KeyAlgorithm(algorithm)
        public_key = ""
        if generate:
            key = generate_key(alg)
            material = MaterialInput("", Secret(b""), Secret(b""), key.private_pem, "")
            public_key = key.public_pem
        assert material is not None
        if not generate:
            validate_material(venue, alg, material)
        seed = self._exchange(ctx, ws.id, cred.id, number, venue, Environment(env), alg, material)
        sealed = self._keys.seal(seal_input(material), EnvelopeBinding(ws.id, cred.id, number))
        now = self._clock.now()
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            ws, cred = load_credential(session, ctx, ref, lock=True)
            check_etag(etag, cred.id, cred.revision)
            self._usable(cred, name)
            version = CredentialVersion(
                id=str(uuid.uuid4()), workspace_id=ws.id, credential_id=cred.id, version=number,
                state=PENDING, api_key_hint=api_key_hint(material.hint_source),
                envelope=sealed.blob, provider_id=sealed.provider_id,
                kek_version=sealed.kek_version, create_time=now,
            )  # fmt: skip
            session.add(version)
            cred.update_time, cred.revision = now, cred.revision + 1
            session.flush()
            if seed is not None:  # the new consent's grant, held by the new version
                seed_session(session, ws.id, cred.id, number, seed[1], seed[0], now)
            self._record(
                session, ctx, ws, cred, "credential.rotate", version=str(number),
                generated=str(generate).lower(), kek=f"{sealed.provider_id}:{sealed.kek_version}",
            )  # fmt: skip
            return view_of(session, ws, cred, coinbase_strict=self._strict), version, public_key

    def _exchange(
        self, ctx: CallContext, ws_id: str, cred_id: str, number: int, venue: Venue,
        env: Environment, alg: KeyAlgorithm, material: MaterialInput,
    ) -> tuple[SessionTokens, Sealed] | None:  # fmt: skip
        """A new OAuth consent is exchanged before anything is stored (see onboarding)."""
        if alg is not KeyAlgorithm.OAUTH_CONSENT:
            return None
        if self._grant is None:
            raise OperationNotSupported("OAuth rotation is not wired in this server")
        tokens = self._grant(ctx, venue, env, for_exchange(material, venue, env))
        binding = session_binding(ws_id, cred_id, number, 1)
        return tokens, self._keys.seal(Secret(tokens.to_json()), binding)

    def promote(self, ctx: CallContext, name: str, etag: str) -> CredentialView:
        ref = parse_version("name", name)
        now = self._clock.now()
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            cref = parse_credential("name", credential_name(ref.workspace, ref.credential))
            ws, cred = load_credential(session, ctx, cref, lock=True)
            check_etag(etag, cred.id, cred.revision)
            self._usable(cred, name)
            ensure_not_frozen(ws, now)
            target = repo.version(session, cred, ref.version, lock=True)
            if target is None:
                raise NotFound(name)
            if target.state != PENDING or not target.api_key_hint:
                raise VersionNotPending(
                    "only a PENDING version with an API key can be promoted",
                    metadata={"version": name},
                )
            for v in repo.versions(session, cred):
                if v.state == CURRENT:
                    v.state, v.destroy_after = PREVIOUS, now + self._grace
            target.state, target.promote_time = CURRENT, now
            cred.current_version, cred.api_key_hint = target.version, target.api_key_hint
            if cred.state == "pending":
                cred.state = "active"
            cred.update_time, cred.revision = now, cred.revision + 1
            self._record(
                session, ctx, ws, cred, "credential.promote", version=str(target.version),
                grace_seconds=str(int(self._grace.total_seconds())),
            )  # fmt: skip
            return view_of(session, ws, cred, coinbase_strict=self._strict)

    def revoke(self, ctx: CallContext, name: str, etag: str) -> CredentialView:
        ref = parse_credential("name", name)
        now = self._clock.now()
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            ws, cred = load_credential(session, ctx, ref, lock=True)
            check_etag(etag, cred.id, cred.revision)
            self._usable(cred, name)
            destroyed = 0
            for v in repo.versions(session, cred):
                if v.envelope is not None:
                    destroyed += 1
                v.envelope, v.state = None, DESTROYED
                v.destroy_time = v.destroy_time or now
            # The venue session's tokens go with the secret they came from.
            session.execute(delete(VenueSession).where(
                VenueSession.workspace_id == ws.id, VenueSession.credential_id == cred.id
            ))  # fmt: skip
            cred.state, cred.revoke_time = "revoked", now
            cred.update_time, cred.revision = now, cred.revision + 1
            self._record(
                session, ctx, ws, cred, "credential.revoke", destroyed_versions=str(destroyed)
            )
            self._keys.forget(credential_id=cred.id)
            return view_of(session, ws, cred, coinbase_strict=self._strict)

    def destroy_expired(self, batch: int = 100) -> int:
        """Destroy PREVIOUS versions past their grace period (system job). Returns the count."""
        ctx = system_context("grace period of a previous credential version ended")
        done = 0
        with self._db.transaction() as session:
            workspaces = ws_repo.all_ids(session)
        for uid, _rid in workspaces:  # one workspace per unit of work (tenant guard, RLS)
            with self._db.transaction() as session:
                bind_workspace(session, uid)  # first: row-level security shows the bound row only
                ws = ws_repo.by_uid(session, uid)
                if ws is None:
                    continue
                prune_claims(session, self._clock.now())  # replay claims past every window
                for v in repo.expired_previous(session, self._clock.now(), batch):
                    cred = session.get(Credential, v.credential_id)
                    if cred is None:
                        continue
                    v.envelope, v.state, v.destroy_time = None, DESTROYED, self._clock.now()
                    stale = session.get(VenueSession, (v.credential_id, v.version))
                    if stale is not None:  # its session's tokens go with it
                        session.delete(stale)
                    self._record(
                        session, ctx, ws, cred, "credential.destroy", version=str(v.version)
                    )
                    done += 1
        return done
