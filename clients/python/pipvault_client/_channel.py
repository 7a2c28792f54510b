"""Address parsing and channel construction (plaintext only for Unix sockets and loopback)."""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Any

import grpc  # type: ignore[import-untyped]

from pipvault_client._config import (
    MAX_RECEIVE_MESSAGE_LENGTH,
    MAX_SEND_MESSAGE_LENGTH,
    TlsConfig,
)
from pipvault_client._version import USER_AGENT

__all__ = ["Endpoint", "channel_options", "open_channel", "parse_address", "ssl_credentials"]


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoint:
    """A parsed vault address.

    Attributes:
        target: the gRPC target string.
        local: a Unix socket or a loopback host, where plaintext is allowed.
    """

    target: str
    local: bool


def parse_address(address: str) -> Endpoint:
    """Parses ``unix:///abs/path.sock`` (or ``unix:/abs/path``) or ``host:port``.

    Raises:
        ValueError: the address is malformed.
    """
    address = address.strip()
    if not address:
        raise ValueError("empty vault address")
    if address.startswith("unix:"):
        path = address.removeprefix("unix:")
        if path.startswith("//"):
            path = path[2:]
        if not path.startswith("/"):
            raise ValueError("unix socket addresses need an absolute path: unix:///abs/path.sock")
        return Endpoint(target=f"unix:{path}", local=True)
    if "://" in address:
        raise ValueError("vault address must be unix:///abs/path.sock or host:port")
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("vault address must be unix:///abs/path.sock or host:port")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if ":" in bare and not host.startswith("["):
        raise ValueError("IPv6 addresses must be bracketed: [::1]:8201")
    return Endpoint(target=f"{host}:{port}", local=_is_loopback(bare))


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def channel_options(tls: TlsConfig | None) -> list[tuple[str, Any]]:
    """Channel arguments: message size limits, no HTTP proxy, a user agent."""
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", MAX_RECEIVE_MESSAGE_LENGTH),
        ("grpc.max_send_message_length", MAX_SEND_MESSAGE_LENGTH),
        # Credentials and signed orders never go through an HTTP proxy from the environment.
        ("grpc.enable_http_proxy", 0),
        ("grpc.primary_user_agent", USER_AGENT),
    ]
    if tls is not None and tls.server_name:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    return options


def ssl_credentials(tls: TlsConfig) -> Any:
    """``grpc.ssl_channel_credentials`` from the PEM files of ``tls``."""
    root, key, chain = tls.read()
    return grpc.ssl_channel_credentials(
        root_certificates=root, private_key=key, certificate_chain=chain
    )


def open_channel(api: Any, target: str, tls: TlsConfig | None) -> Any:
    """A channel to ``target`` from ``api`` (``grpc`` or ``grpc.aio``): TLS when ``tls`` is set."""
    options = channel_options(tls)
    if tls is None:
        return api.insecure_channel(target, options=options)
    return api.secure_channel(target, ssl_credentials(tls), options)


def require_secure_or_local(endpoint: Endpoint, tls: TlsConfig | None) -> None:
    """Refuses plaintext to anything but a Unix socket or loopback."""
    if tls is None and not endpoint.local:
        raise ValueError(
            "plaintext is only allowed to unix: sockets and loopback addresses; "
            "give TLS material (CA bundle, client certificate and key) for this address"
        )
