"""Permission attestation: ask the venue what the key can really do; quarantine if it can move
funds.

Attestation decrypts the secret outside any routing context, so it is a *read* (DESIGN.md §6):
the ``credential.read`` event (and its page) commits before the secret is decrypted. The result is
recorded on the credential and in a ``credential.attest`` event. A credential whose key can
withdraw or transfer becomes QUARANTINED and signs nothing until a clean attestation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vault_server.audit import AuditLog, AuditRecord, Outcome
from vault_server.brokers.base import (
    FORBIDDEN_SCOPES,
    Environment,
    KeyAlgorithm,
    SigningContext,
    Venue,
)
from vault_server.brokers.registry import adapter_for
from vault_server.core.clock import Clock, Random, to_millis
from vault_server.core.errors import CredentialRevoked, VaultError, VenueUnavailable
from vault_server.crypto.envelope import EnvelopeBinding
from vault_server.custody._material import open_material
from vault_server.custody._venue_calls import PageHook, SigningSettings
from vault_server.custody._venue_nonce import next_nonce
from vault_server.custody._views import CredentialView, load_credential, view_of
from vault_server.domain import CallContext, credential_name, parse_credential, system_context
from vault_server.egress.client import EgressClient, allowed_origins
from vault_server.keys import KeyManager
from vault_server.storage.database import Database
from vault_server.storage.repositories import credentials as repo
from vault_server.storage.repositories import workspaces as ws_repo
from vault_server.storage.tenant import bind_workspace

CLEAN, EXCESSIVE, NOT_SUPPORTED, FAILED = "clean", "excessive", "not_supported", "failed"


@dataclass(frozen=True)
class Attested:
    result: dict[str, Any]
    view: CredentialView


class Attestor:
    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        keys: KeyManager,
        egress: EgressClient,
        clock: Clock,
        random: Random,
        settings: SigningSettings,
        page_hook: PageHook | None = None,
    ) -> None:
        self._db = db
        self._audit = audit
        self._keys = keys
        self._egress = egress
        self._clock = clock
        self._random = random
        self._settings = settings
        self._page = page_hook

    def attest(self, ctx: CallContext, name: str) -> Attested:
        ref = parse_credential("name", name)
        strict = self._settings.coinbase_strict
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            # Locked: the Kraken nonce below is shared with concurrent signing.
            ws, cred = load_credential(session, ctx, ref, lock=True)
            if cred.state == "revoked":
                raise CredentialRevoked("the credential is revoked", metadata={"credential": name})
            venue, env = Venue(cred.broker), Environment(cred.environment)
            adapter = adapter_for(venue, coinbase_strict=strict)
            version = (
                repo.version(session, cred, cred.current_version) if cred.current_version else None
            )
            blob = version.envelope if version is not None else None
            number = version.version if version is not None else 0
            nonce = (
                next_nonce(session, cred, to_millis(self._clock.now()))
                if adapter.needs_nonce
                else None
            )
            record = AuditRecord(
                action="credential.read",
                workspace_id=ws.id,
                workspace=f"workspaces/{ws.resource_id}",
                credential=credential_name(ws.resource_id, cred.resource_id),
                details={"purpose": "attestation", "version": str(number)},
            )
            if adapter.single_permission_tier:
                blob = None  # no permission API at these venues: nothing to decrypt
            if blob is not None:
                row = self._audit.append(session, ctx, record)
                if self._page is not None:
                    self._page(session, ctx, record, row.seq, row.hash)
            binding = EnvelopeBinding(ws.id, cred.id, number)
            algorithm = KeyAlgorithm(cred.key_algorithm)
        if adapter.single_permission_tier:
            now = self._clock.now().isoformat()
            result = {"attest_time": now, "scopes": [], "venue_fields": {}, "result": NOT_SUPPORTED}
        else:
            result = self._ask(ctx, adapter, venue, env, algorithm, blob, binding, nonce)
        return self._record(ctx, ref, result)

    def _ask(
        self, ctx: CallContext, adapter: Any, venue: Venue, env: Environment,
        algorithm: KeyAlgorithm, blob: bytes | None, binding: EnvelopeBinding, nonce: int | None,
    ) -> dict[str, Any]:  # fmt: skip
        now = self._clock.now()
        base = {"attest_time": now.isoformat(), "scopes": [], "venue_fields": {}}
        if blob is None:
            return {**base, "result": FAILED, "venue_fields": {"error": "no key material"}}
        material = open_material(self._keys.open(blob, binding), venue, env, algorithm)
        sign_ctx = SigningContext(
            now_ms=to_millis(now),
            recv_window_ms=self._settings.recv_window_cap_ms,
            nonce=nonce,
            random_hex=self._random.bytes(16).hex(),
            base_url=self._settings.venue_base_urls.get(venue.value),
        )
        request = adapter.permission_request(material, sign_ctx)
        if request is None:
            return {**base, "result": NOT_SUPPORTED}
        # A venue may answer permission queries on another host than orders (Binance USD-M asks
        # api.binance.com): the allow-list is the host the adapter names for that query.
        permission_base_url = getattr(adapter, "permission_base_url", adapter.default_base_url)
        origins = allowed_origins(
            permission_base_url(env), self._settings.venue_base_urls, venue.value
        )
        try:
            response = self._egress.send(request, origins, ctx.remaining())
            # Hyperliquid reads the answer against the credential (the agent's master).
            parse_for = getattr(adapter, "parse_permissions_for", None)
            report = (
                parse_for(material, response.status, response.body)
                if parse_for is not None
                else adapter.parse_permissions(response.status, response.body)
            )
        except VenueUnavailable as exc:
            return {**base, "result": FAILED, "venue_fields": dict(exc.metadata)}
        except VaultError as exc:
            return {**base, "result": FAILED, "venue_fields": {"error": exc.reason}}
        scopes = sorted(s.value for s in report.scopes)
        result = EXCESSIVE if report.scopes & FORBIDDEN_SCOPES else CLEAN
        fields = {k: str(v)[:200] for k, v in list(report.raw.items())[:32]}
        return {**base, "result": result, "scopes": scopes, "venue_fields": fields}

    def _record(self, ctx: CallContext, ref: Any, result: dict[str, Any]) -> Attested:
        with self._db.transaction(timeout_s=ctx.remaining()) as session:
            ws, cred = load_credential(session, ctx, ref, lock=True)
            cred.attestation = result
            if result["result"] == EXCESSIVE and cred.state in ("active", "pending"):
                cred.state = "quarantined"
            elif result["result"] == CLEAN and cred.state == "quarantined":
                cred.state = "active" if cred.current_version else "pending"
            cred.update_time = self._clock.now()
            cred.revision += 1
            outcome = Outcome.FAILED if result["result"] == FAILED else Outcome.SUCCESS
            self._audit.append(
                session,
                ctx,
                AuditRecord(
                    action="credential.attest",
                    outcome=outcome,
                    workspace_id=ws.id,
                    workspace=f"workspaces/{ws.resource_id}",
                    credential=credential_name(ws.resource_id, cred.resource_id),
                    details={"result": result["result"], "scopes": ",".join(result["scopes"]),
                             "state": cred.state},
                ),
            )  # fmt: skip
            return Attested(
                result, view_of(session, ws, cred, coinbase_strict=self._settings.coinbase_strict)
            )


class ScheduledAttestation:
    """Re-attests every credential that has a permission API, one workspace at a time, as the
    system actor (each one is an audited, paged read: DESIGN.md §6)."""

    def __init__(self, db: Database, attestor: Attestor, *, coinbase_strict: bool) -> None:
        self._db = db
        self._attestor = attestor
        self._strict = coinbase_strict

    def run(self) -> int:
        ctx = system_context("scheduled permission attestation", method="system/attestation")
        with self._db.transaction() as session:
            workspaces = ws_repo.all_ids(session)
        names: list[str] = []
        for uid, rid in workspaces:
            with self._db.transaction() as session:
                bind_workspace(session, uid)
                for cred in repo.page(
                    session, uid, after=None, limit=10_000, broker=None, show_revoked=False
                ):
                    adapter = adapter_for(Venue(cred.broker), coinbase_strict=self._strict)
                    if cred.current_version and not adapter.single_permission_tier:
                        names.append(credential_name(rid, cred.resource_id))
        done = 0
        for name in names:
            try:
                self._attestor.attest(ctx, name)
                done += 1
            except VaultError:
                continue  # recorded as a failed attestation or refused; the next run retries
        return done
