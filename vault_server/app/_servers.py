"""Wiring of the edge: admission (identity, limits, rate limits), one interceptor per plane,
the servicers over the domain, and the gRPC servers (built on the running loop, in start())."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

from vault_server.app._identity import Identity
from vault_server.app._signing import SigningParts
from vault_server.audit import AuditLog, AuditReader, AuditVerifier
from vault_server.auth.rate_limit import RateLimiter
from vault_server.auth.rpc_roles import Plane
from vault_server.config import Settings
from vault_server.core.clock import Clock
from vault_server.keys import KeyAdmin
from vault_server.observability.metrics import Metrics
from vault_server.rpc.admission import Admission, Limits
from vault_server.rpc.interceptor import CallInterceptor
from vault_server.rpc.runner import BlockingRunner
from vault_server.rpc.server import ListenerPlan, Servicers, VaultServers
from vault_server.rpc.servicers.audit import AuditServicer
from vault_server.rpc.servicers.credentials import CredentialServicer
from vault_server.rpc.servicers.keys import KeyServicer
from vault_server.rpc.servicers.signing import SigningServicer
from vault_server.rpc.servicers.workspaces import WorkspaceServicer
from vault_server.rpc.tls_credentials import mtls_server_credentials
from vault_server.storage.database import Database
from vault_server.workspaces import DenialRecorder, WorkspaceManager


@dataclass(frozen=True)
class Edge:
    make_servers: Callable[[], VaultServers]
    rate_limiter: RateLimiter


def build_edge(
    settings: Settings,
    *,
    identity: Identity,
    db: Database,
    audit: AuditLog,
    workspaces: WorkspaceManager,
    signing: SigningParts,
    audit_reader: AuditReader,
    audit_verifier: AuditVerifier,
    key_admin: KeyAdmin,
    run: BlockingRunner,
    metrics: Metrics,
    clock: Clock,
) -> Edge:
    limits = settings.limits
    call_limits = Limits(
        max_deadline_s=limits.max_deadline_s,
        max_stream_deadline_s=limits.max_stream_deadline_s,
        trusted_proxies=tuple(ipaddress.ip_network(p) for p in settings.trusted_proxies),
    )
    rate_limiter = RateLimiter(
        burst_factor=settings.identity.rate_limit_burst_factor, monotonic=clock.monotonic
    )
    admission = Admission(identity.sources, call_limits, rate_limiter)
    denials = DenialRecorder(db, audit)

    def interceptor(plane: Plane) -> CallInterceptor:
        return CallInterceptor(
            plane=plane,
            admission=admission,
            limits=call_limits,
            denials=denials,
            run=run,
            metrics=metrics,
            max_concurrent=limits.max_concurrent_rpcs,
        )

    listen = settings.listen
    plan = ListenerPlan(
        data_socket=listen.data_socket,
        data_address=listen.data_address,
        admin_address=listen.admin_address,
        health_address=listen.health_address,
        socket_mode=listen.socket_mode,
        socket_owner=listen.socket_owner,
        socket_group=listen.socket_group,
        max_message_bytes=limits.max_message_bytes,
        max_concurrent_rpcs=limits.max_concurrent_rpcs,
    )
    s = signing
    servicers = Servicers(
        workspace=WorkspaceServicer(workspaces, run, clock),
        credential=CredentialServicer(
            s.credentials,
            s.lifecycle,
            s.queries,
            s.attestor,
            run,
            s.sessions.admin,
            s.sessions.applications,
        ),
        signing=SigningServicer(s.routing, s.hot_signer, s.fan_out, run),
        audit=AuditServicer(audit_reader, audit_verifier, run),
        key=KeyServicer(key_admin, run),
    )

    # grpc.aio servers bind to the running event loop, so they are built in start().
    def make_servers() -> VaultServers:
        tls = identity.tls_files
        return VaultServers(
            plan,
            servicers,
            [interceptor(Plane.DATA)],
            [interceptor(Plane.ADMIN)],
            server_credentials=(lambda: mtls_server_credentials(tls)) if tls else None,
        )

    return Edge(make_servers, rate_limiter)
