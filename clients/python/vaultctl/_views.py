"""Human views of API messages (metadata only: no message here carries secret material)."""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf import duration_pb2
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from pipsync.vault.v1 import (
    audit_pb2,
    audit_service_pb2,
    credential_pb2,
    credential_service_pb2,
    key_service_pb2,
    trading_pb2,
    workspace_pb2,
)

from vaultctl._convert import format_timestamp, friendly, venue
from vaultctl._output import Output


def _enum(enum: EnumTypeWrapper, number: int, prefix: str) -> str:
    return friendly(enum.DESCRIPTOR, number, prefix)


def _state(message_enum: EnumTypeWrapper, number: int) -> str:
    return _enum(message_enum, number, "STATE_")


def _duration(value: duration_pb2.Duration) -> str:
    if value.seconds == 0 and value.nanos == 0:
        return ""
    return f"{value.ToTimedelta().total_seconds():g}s"


# workspaces ----------------------------------------------------------------------------------


def workspace(out: Output, ws: workspace_pb2.Workspace) -> None:
    out.fields(
        ws.name,
        [
            ("name", ws.name),
            ("display name", ws.display_name),
            ("state", _state(workspace_pb2.Workspace.State, ws.state)),
            ("freeze reason", ws.freeze_reason),
            ("frozen by", ws.frozen_by),
            ("frozen at", format_timestamp(ws.freeze_time)),
            ("freeze expires", format_timestamp(ws.freeze_expire_time)),
            ("created", format_timestamp(ws.create_time)),
            ("updated", format_timestamp(ws.update_time)),
            ("etag", ws.etag),
        ],
    )


def workspaces(out: Output, items: Iterable[workspace_pb2.Workspace]) -> None:
    out.table(
        "workspaces",
        ["name", "display name", "state", "freeze expires", "created"],
        (
            [
                ws.name,
                ws.display_name,
                _state(workspace_pb2.Workspace.State, ws.state),
                format_timestamp(ws.freeze_expire_time),
                format_timestamp(ws.create_time),
            ]
            for ws in items
        ),
    )


# credentials ---------------------------------------------------------------------------------


def _scopes(values: Iterable[int]) -> list[str]:
    return [_enum(trading_pb2.Scope, v, "SCOPE_") for v in values]


def _lifecycle(number: int) -> str:
    return _enum(trading_pb2.CredentialLifecycle, number, "CREDENTIAL_LIFECYCLE_")


def _session_state(session: credential_pb2.SessionStatus) -> str:
    return _state(credential_pb2.SessionStatus.State, session.state)


def session_summary(cred: credential_pb2.Credential) -> str:
    """One cell: the session state, then failures and the last error when there are any."""
    if not cred.HasField("session"):
        return ""
    s = cred.session
    parts = [_session_state(s)]
    if s.consecutive_failures:
        parts.append(f"{s.consecutive_failures} failure(s)")
    if s.last_error_reason:
        parts.append(s.last_error_reason)
    return ", ".join(parts)


def session(out: Output, s: credential_pb2.SessionStatus) -> None:
    out.fields(
        "venue session",
        [
            ("state", _session_state(s)),
            ("expires", format_timestamp(s.expire_time)),
            ("refresh expires", format_timestamp(s.refresh_expire_time)),
            ("renewed", format_timestamp(s.renew_time)),
            ("failures in a row", s.consecutive_failures or ""),
            ("next attempt", format_timestamp(s.next_attempt_time)),
            ("last error", s.last_error_reason),
            ("generation", s.generation or ""),
        ],
    )


def credential(out: Output, cred: credential_pb2.Credential) -> None:
    out.fields(
        cred.name,
        [
            ("name", cred.name),
            ("display name", cred.display_name),
            ("broker", venue(cred.broker)),
            ("environment", _enum(trading_pb2.Environment, cred.environment, "ENVIRONMENT_")),
            (
                "key algorithm",
                _enum(trading_pb2.KeyAlgorithm, cred.key_algorithm, "KEY_ALGORITHM_"),
            ),
            ("state", _state(credential_pb2.Credential.State, cred.state)),
            ("lifecycle", _lifecycle(cred.lifecycle) if cred.lifecycle else ""),
            ("session", session_summary(cred)),
            ("api key", cred.api_key_hint),
            ("scopes", _scopes(cred.scopes)),
            ("venue scopes", list(cred.venue_scopes)),
            ("single permission tier", cred.single_permission_tier or ""),
            ("proxy only", cred.proxy_only or ""),
            ("current version", cred.current_version or ""),
            ("created", format_timestamp(cred.create_time)),
            ("updated", format_timestamp(cred.update_time)),
            ("revoked", format_timestamp(cred.revoke_time)),
            ("etag", cred.etag),
        ],
    )
    for warning in cred.warnings:
        out.line(f"warning: {warning}", style="bold yellow")
    if cred.versions:
        out.table(
            "versions",
            ["version", "state", "api key", "kek", "created", "promoted", "destroyed"],
            (
                [
                    v.version,
                    _state(credential_pb2.CredentialVersion.State, v.state),
                    v.api_key_hint,
                    v.kek_reference,
                    format_timestamp(v.create_time),
                    format_timestamp(v.promote_time),
                    format_timestamp(v.destroy_time),
                ]
                for v in cred.versions
            ),
        )
    if cred.HasField("session"):
        session(out, cred.session)
    if cred.HasField("policy"):
        policy(out, cred.policy)
    if cred.HasField("attestation"):
        attestation(out, cred.attestation)


def credentials(out: Output, items: Iterable[credential_pb2.Credential]) -> None:
    out.table(
        "credentials",
        [
            "name",
            "broker",
            "env",
            "state",
            "lifecycle",
            "session",
            "session expires",
            "api key",
            "scopes",
            "version",
            "notes",
        ],
        (
            [
                c.name,
                venue(c.broker),
                _enum(trading_pb2.Environment, c.environment, "ENVIRONMENT_"),
                _state(credential_pb2.Credential.State, c.state),
                _lifecycle(c.lifecycle) if c.lifecycle else "",
                session_summary(c),
                format_timestamp(c.session.expire_time) if c.HasField("session") else "",
                c.api_key_hint,
                _scopes(c.scopes),
                c.current_version or "",
                "single-tier" if c.single_permission_tier else "",
            ]
            for c in items
        ),
        no_wrap=("session expires",),
    )


def platform_applications(
    out: Output, items: Iterable[credential_service_pb2.PlatformApplication]
) -> None:
    out.table(
        "platform applications",
        ["name", "broker", "env", "client id", "version", "updated"],
        (
            [
                a.name,
                venue(a.broker),
                _enum(trading_pb2.Environment, a.environment, "ENVIRONMENT_"),
                a.client_id_hint,
                a.version or "",
                format_timestamp(a.update_time),
            ]
            for a in items
        ),
        no_wrap=("updated",),
    )


def policy(out: Output, p: credential_pb2.OrderPolicy) -> None:
    out.fields(
        "order policy",
        [
            ("symbols", list(p.allowed_symbols) or "all"),
            ("sides", [_enum(trading_pb2.OrderSide, s, "ORDER_SIDE_") for s in p.allowed_sides]),
            (
                "order types",
                [_enum(trading_pb2.OrderType, t, "ORDER_TYPE_") for t in p.allowed_order_types],
            ),
            ("max quantity", p.max_quantity),
            ("max notional", p.max_notional),
            ("max orders / interval", p.max_orders_per_interval or ""),
            ("interval", _duration(p.rate_interval)),
            ("max freshness", _duration(p.max_freshness)),
        ],
    )


def attestation(out: Output, a: credential_pb2.Attestation) -> None:
    out.fields(
        "attestation",
        [
            ("result", _enum(credential_pb2.Attestation.Result, a.result, "RESULT_")),
            ("scopes", _scopes(a.scopes)),
            ("venue fields", dict(sorted(a.venue_fields.items()))),
            ("attested", format_timestamp(a.attest_time)),
        ],
    )


# audit ---------------------------------------------------------------------------------------


def _outcome(number: int) -> str:
    return _enum(audit_pb2.AuditEvent.Outcome, number, "OUTCOME_")


def _actor(actor: audit_pb2.Actor) -> str:
    text = actor.id
    if actor.on_behalf_of:
        text += f" (for {actor.on_behalf_of})"
    return text


def audit_events(out: Output, events: Iterable[audit_pb2.AuditEvent]) -> None:
    out.table(
        "audit events",
        ["time", "seq", "workspace", "action", "outcome", "actor", "credential", "reason"],
        (
            [
                format_timestamp(e.event_time),
                e.sequence,
                e.workspace,
                e.action,
                _outcome(e.outcome) + (f" {e.error_reason}" if e.error_reason else ""),
                _actor(e.actor),
                e.credential,
                e.reason,
            ]
            for e in events
        ),
        no_wrap=("time", "seq"),
    )


def audit_line(out: Output, e: audit_pb2.AuditEvent) -> None:
    parts = [
        format_timestamp(e.event_time),
        e.name or str(e.sequence),
        e.action,
        _outcome(e.outcome) + (f"/{e.error_reason}" if e.error_reason else ""),
        f"actor={_actor(e.actor)}",
    ]
    if e.credential:
        parts.append(f"credential={e.credential}")
    if e.peer:
        parts.append(f"peer={e.peer}")
    if e.reason:
        parts.append(f"reason={e.reason!r}")
    out.line("  ".join(parts))


def verify(out: Output, result: audit_service_pb2.VerifyAuditLogResponse) -> None:
    if result.intact:
        out.line(
            f"audit log intact: {result.chains_checked} chain(s), "
            f"{result.events_checked} event(s) checked",
            style="green",
        )
        return
    out.line("audit log NOT intact", style="bold red")
    out.fields(
        "first bad event",
        [
            ("event", result.first_bad_event),
            ("problem", result.problem),
            ("chains checked", result.chains_checked),
            ("events checked", result.events_checked),
        ],
    )


# keys ----------------------------------------------------------------------------------------


def key_status(out: Output, status: key_service_pb2.GetKeyStatusResponse) -> None:
    rows: list[list[object]] = []
    for provider in status.providers:
        head: list[object] = [
            provider.provider_id + (" (primary)" if provider.primary else ""),
            provider.kind,
            "healthy" if provider.healthy else "UNHEALTHY",
        ]
        if not provider.versions:
            rows.append([*head, "", "", "", "", ""])
        for version in provider.versions:
            rows.append(
                [
                    *head,
                    version.version,
                    _state(key_service_pb2.KekVersion.State, version.state),
                    version.wrap_count,
                    version.wrap_limit,
                    version.ciphertext_count,
                ]
            )
            head = ["", "", ""]
    numbers = ("kek", "wraps", "wrap limit", "ciphertexts")
    out.table(
        "key providers",
        ["provider", "kind", "health", "kek", "state", *numbers[1:]],
        rows,
        no_wrap=numbers,  # a number is never cut between two lines; the words give way
        right=numbers,
    )
