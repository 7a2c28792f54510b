"""The grpc.aio servers: data plane, admin plane (with reflection) and a health-only port.

The five API services are registered on the data and admin servers alike; the interceptor's plane
check answers WRONG_LISTENER for a method called on the other plane (a clear, audited refusal
rather than a bare UNIMPLEMENTED). Reflection (admin plane only) lists just the services that
plane serves, so a client generated from it never sees SigningService there. Health is
NOT_SERVING until ``set_serving(True)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from pipsync.vault.v1 import (
    audit_service_pb2,
    audit_service_pb2_grpc,
    credential_service_pb2,
    credential_service_pb2_grpc,
    key_service_pb2,
    key_service_pb2_grpc,
    signing_service_pb2,
    signing_service_pb2_grpc,
    workspace_service_pb2,
    workspace_service_pb2_grpc,
)

from vault_server.auth.rpc_roles import RULES, Plane
from vault_server.rpc.listeners import ListenerConflict, SocketLock, probe_port

_API_DESCRIPTORS: tuple[ServiceDescriptor, ...] = (
    workspace_service_pb2.DESCRIPTOR.services_by_name["WorkspaceService"],
    credential_service_pb2.DESCRIPTOR.services_by_name["CredentialService"],
    signing_service_pb2.DESCRIPTOR.services_by_name["SigningService"],
    audit_service_pb2.DESCRIPTOR.services_by_name["AuditService"],
    key_service_pb2.DESCRIPTOR.services_by_name["KeyService"],
)
API_SERVICES = tuple(s.full_name for s in _API_DESCRIPTORS)
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
LIVENESS_SERVICE = "liveness"


def services_on(plane: Plane) -> tuple[str, ...]:
    """The API services with at least one method served on ``plane`` (from the RPC rule table)."""
    return tuple(
        s.full_name
        for s in _API_DESCRIPTORS
        if any(
            (rule := RULES.get(f"/{s.full_name}/{m.name}")) is not None and rule.plane is plane
            for m in s.methods
        )
    )


@dataclass
class Servicers:
    workspace: Any
    credential: Any
    signing: Any
    audit: Any
    key: Any


@dataclass
class ListenerPlan:
    data_socket: Path | None
    data_address: str | None
    admin_address: str | None
    health_address: str | None
    socket_mode: int
    max_message_bytes: int
    max_concurrent_rpcs: int
    socket_owner: int | None = None
    socket_group: int | None = None


@dataclass
class Bound:
    """Where the servers actually listen (ports resolved when configured as 0)."""

    data_socket: Path | None = None
    data_port: int | None = None
    admin_port: int | None = None
    health_port: int | None = None
    addresses: dict[str, str] = field(default_factory=dict)


def _options(plan: ListenerPlan) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_receive_message_length", plan.max_message_bytes),
        ("grpc.max_send_message_length", max(plan.max_message_bytes, 4 * 1024 * 1024)),
        ("grpc.so_reuseport", 0),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_ping_strikes", 2),
        ("grpc.keepalive_permit_without_calls", 0),
    ]


def _add_api(server: grpc.aio.Server, s: Servicers) -> None:
    workspace_service_pb2_grpc.add_WorkspaceServiceServicer_to_server(s.workspace, server)
    credential_service_pb2_grpc.add_CredentialServiceServicer_to_server(s.credential, server)
    signing_service_pb2_grpc.add_SigningServiceServicer_to_server(s.signing, server)
    audit_service_pb2_grpc.add_AuditServiceServicer_to_server(s.audit, server)
    key_service_pb2_grpc.add_KeyServiceServicer_to_server(s.key, server)


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


class VaultServers:
    def __init__(
        self,
        plan: ListenerPlan,
        servicers: Servicers,
        data_interceptors: list[grpc.aio.ServerInterceptor],
        admin_interceptors: list[grpc.aio.ServerInterceptor],
        server_credentials: Callable[[], grpc.ServerCredentials] | None = None,
    ) -> None:
        self.plan = plan
        self._servicers = servicers
        self.health = health.aio.HealthServicer()
        self.bound = Bound()
        self._servers: list[grpc.aio.Server] = []
        self._socket_lock: SocketLock | None = None
        hard_cap = plan.max_concurrent_rpcs * 2 + 16  # backstop; the interceptor answers first
        opts = _options(plan)

        if plan.data_socket is not None or plan.data_address is not None:
            data = grpc.aio.server(
                interceptors=data_interceptors, options=opts, maximum_concurrent_rpcs=hard_cap
            )
            _add_api(data, servicers)
            health_pb2_grpc.add_HealthServicer_to_server(self.health, data)
            if plan.data_socket is not None:
                self._socket_lock = SocketLock(plan.data_socket)
                self._socket_lock.acquire()
                try:
                    data.add_insecure_port(f"unix:{plan.data_socket}")
                except RuntimeError:
                    self.release()
                    raise ListenerConflict(
                        f"listen.data_socket: cannot listen on {plan.data_socket}"
                    ) from None
                self.bound.data_socket = plan.data_socket
            if plan.data_address is not None:
                port = self._bind(data, plan.data_address, server_credentials)
                self.bound.data_port = port
            self._servers.append(data)

        if plan.admin_address is not None:
            admin = grpc.aio.server(
                interceptors=admin_interceptors, options=opts, maximum_concurrent_rpcs=hard_cap
            )
            _add_api(admin, servicers)
            health_pb2_grpc.add_HealthServicer_to_server(self.health, admin)
            reflection.enable_server_reflection(
                (*services_on(Plane.ADMIN), HEALTH_SERVICE, reflection.SERVICE_NAME), admin
            )
            self.bound.admin_port = self._bind(admin, plan.admin_address, server_credentials)
            self._servers.append(admin)

        if plan.health_address is not None:
            hs = grpc.aio.server(options=opts, maximum_concurrent_rpcs=64)
            health_pb2_grpc.add_HealthServicer_to_server(self.health, hs)
            self.bound.health_port = self._bind(hs, plan.health_address, None)
            self._servers.append(hs)

    def _bind(
        self,
        server: grpc.aio.Server,
        address: str,
        creds: Callable[[], grpc.ServerCredentials] | None,
    ) -> int:
        """Bind one TCP listener; a port in use is a one-line ``ListenerConflict``."""
        setting = next(
            (k for k in ("data_address", "admin_address", "health_address")
             if getattr(self.plan, k) == address),
            "address",
        )  # fmt: skip
        try:
            probe_port(address)  # before gRPC core, which would log its own error lines
            if creds is not None:  # one credentials object per listener (its own fetcher)
                return int(server.add_secure_port(address, creds()))
            return int(server.add_insecure_port(address))
        except (RuntimeError, OSError):
            self.release()
            raise ListenerConflict(
                f"listen.{setting}: cannot listen on {address} (address already in use?)"
            ) from None

    def release(self) -> None:
        """Give up the data socket (and its lock) if this instance owns it."""
        if self._socket_lock is not None:
            self._socket_lock.release()
            self._socket_lock = None

    async def start(self) -> Bound:
        self._servicers.audit.open_follow_streams()
        await self.set_serving(False)
        # Liveness: SERVING for as long as the process serves at all, whatever readiness says
        # (a kubelet liveness probe on service "liveness" never restarts a pod for an outage).
        await self.health.set(LIVENESS_SERVICE, health_pb2.HealthCheckResponse.SERVING)
        for server in self._servers:
            await server.start()
        if self.bound.data_socket is not None:
            os.chmod(self.bound.data_socket, self.plan.socket_mode)
            if self.plan.socket_owner is not None or self.plan.socket_group is not None:
                os.chown(
                    self.bound.data_socket,
                    -1 if self.plan.socket_owner is None else self.plan.socket_owner,
                    -1 if self.plan.socket_group is None else self.plan.socket_group,
                )
        return self.bound

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *API_SERVICES):
            await self.health.set(name, status)

    def end_follow_streams(self) -> None:
        """End every following audit stream now (shutdown): they would otherwise hold the grace
        period until their deadlines; their clients resume from their cursors."""
        self._servicers.audit.end_follow_streams()

    async def stop(self, grace: float) -> None:
        """NOT_SERVING first (probes drain traffic), end following streams, then let in-flight
        RPCs finish."""
        await self.set_serving(False)
        self.end_follow_streams()
        for server in self._servers:
            await server.stop(grace)
        self.release()  # only the owner (lock holder) ever removes the socket

    async def wait(self) -> None:
        for server in self._servers:
            await server.wait_for_termination()
