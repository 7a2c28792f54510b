"""mTLS end to end: a real grpc.aio server on 127.0.0.1 with dynamic credentials from TlsFiles,
identities resolved from ``context.auth_context()`` through SpiffeSource, and rotation on disk."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from cryptography import x509

from tests.support.certs import (
    ROUTER_ID,
    TRUST_DOMAIN,
    Issued,
    Pki,
    build_pki,
    issue,
    make_ca,
    server_cert,
    write_server_files,
)
from vault_server.auth.identity import CallCredentials
from vault_server.auth.policy import parse_policy
from vault_server.auth.policy_store import PolicyStore
from vault_server.auth.spiffe import SpiffeSource, peer_uri_sans
from vault_server.auth.tls import TlsFiles, TlsMaterial

METHOD = "/pipvault.test.Identity/Who"


# --- the wrapper the RPC edge uses (rpc/tls_credentials.py), inline here --------------------------
def server_credentials(files: TlsFiles) -> grpc.ServerCredentials:
    sub = files.subscribe()

    def config(m: TlsMaterial) -> grpc.ServerCertificateConfiguration:
        return grpc.ssl_server_certificate_configuration(
            [(m.private_key_pem, m.certificate_chain_pem)], root_certificates=m.client_ca_pem
        )

    def fetcher() -> grpc.ServerCertificateConfiguration | None:
        m = sub.poll()
        return None if m is None else config(m)

    return grpc.dynamic_ssl_server_credentials(
        config(sub.initial), fetcher, require_client_authentication=True
    )


# -----------------------------------------------------------------------------------------------


@dataclass
class Server:
    port: int
    dir: Path
    files: TlsFiles
    handled: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def pki() -> Pki:
    return build_pki()


@pytest.fixture
async def server(tmp_path: Path, pki: Pki) -> AsyncIterator[Server]:
    policy = parse_policy(
        {
            "principals": [
                {
                    "id": "router",
                    "roles": ["router"],
                    "workspaces": ["ws-a"],
                    "spiffe_id": ROUTER_ID,
                }
            ]
        }
    )
    source = SpiffeSource(PolicyStore(policy), TRUST_DOMAIN)
    files = TlsFiles(
        *write_server_files(tmp_path / "tls", pki.server, pki.ca), min_check_interval_s=0
    )
    handled: list[str] = []

    async def who(_request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        ids = peer_uri_sans(context.auth_context())
        handled.append(",".join(ids))
        entry = source.identify(CallCredentials({}, ids))
        if entry is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "a valid identity is required")
        return entry.principal.id.encode()

    srv = grpc.aio.server()
    srv.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "pipvault.test.Identity", {"Who": grpc.unary_unary_rpc_method_handler(who)}
            )
        ]
    )
    port = srv.add_secure_port("127.0.0.1:0", server_credentials(files))
    await srv.start()
    try:
        yield Server(port, tmp_path / "tls", files, handled)
    finally:
        await srv.stop(0)


def channel(server: Server, trust: Issued, client: Issued | None) -> grpc.aio.Channel:
    creds = grpc.ssl_channel_credentials(
        trust.cert_pem,
        client.key_pem if client else None,
        client.cert_pem if client else None,
    )
    return grpc.aio.secure_channel(f"127.0.0.1:{server.port}", creds)


async def call(server: Server, trust: Issued, client: Issued | None) -> str:
    async with channel(server, trust, client) as ch:
        reply = await ch.unary_unary(METHOD)(b"", timeout=5)
        return reply.decode()


async def status_of(server: Server, trust: Issued, client: Issued | None) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call(server, trust, client)
    return info.value.code()


async def served_serial(server: Server, client: Issued, trust: Issued) -> int:
    """The serial of the certificate the server presents on a new connection."""
    ctx = ssl.create_default_context(cadata=trust.cert_pem.decode())
    cert, key = server.dir / "probe.crt", server.dir / "probe.key"
    cert.write_bytes(client.cert_pem)
    key.write_bytes(client.key_pem)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["h2"])
    _, writer = await asyncio.open_connection(
        "127.0.0.1", server.port, ssl=ctx, server_hostname="localhost"
    )
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
    return x509.load_der_x509_certificate(der).serial_number


async def test_a_valid_svid_is_identified(server: Server, pki: Pki) -> None:
    assert await call(server, pki.ca, pki.clients["valid"]) == "router"
    assert server.handled == [ROUTER_ID]


@pytest.mark.parametrize("name", [None, "foreign", "expired", "not_yet_valid"])
async def test_the_handshake_refuses_missing_and_untrusted_certificates(
    server: Server, pki: Pki, name: str | None
) -> None:
    client = pki.clients[name] if name else None
    assert await status_of(server, pki.ca, client) == grpc.StatusCode.UNAVAILABLE
    assert server.handled == []  # refused before any handler ran


@pytest.mark.parametrize("name", ["no_san", "two_uris", "wrong_td", "prefix_td"])
async def test_trusted_certificates_without_an_acceptable_svid_are_unauthenticated(
    server: Server, pki: Pki, name: str
) -> None:
    assert await status_of(server, pki.ca, pki.clients[name]) == grpc.StatusCode.UNAUTHENTICATED
    assert len(server.handled) == 1  # the TLS layer let it in; the identity source refused


async def test_a_valid_svid_not_in_the_policy_is_unauthenticated(server: Server, pki: Pki) -> None:
    stranger = issue(pki.ca, "x", uris=[f"spiffe://{TRUST_DOMAIN}/ns/trading/sa/stranger"])
    assert await status_of(server, pki.ca, stranger) == grpc.StatusCode.UNAUTHENTICATED


async def test_certificates_rotate_on_disk_without_a_restart(server: Server, pki: Pki) -> None:
    valid = pki.clients["valid"]
    old_channel = channel(server, pki.ca, valid)
    try:
        assert (await old_channel.unary_unary(METHOD)(b"", timeout=5)).decode() == "router"
        assert await served_serial(server, valid, pki.ca) == pki.server.serial

        # New CA, new server certificate and key, new client CA, all replaced on disk.
        next_ca = make_ca("pipvault test CA 2")
        next_server = server_cert(next_ca)
        next_client = issue(next_ca, "router", uris=[ROUTER_ID])
        write_server_files(server.dir, next_server, next_ca)

        assert await served_serial(server, next_client, next_ca) == next_server.serial
        assert await call(server, next_ca, next_client) == "router"
        # Clients of the old CA are no longer trusted on new connections...
        assert await status_of(server, pki.ca, valid) == grpc.StatusCode.UNAVAILABLE
        # ...while a connection established before the rotation keeps working.
        assert (await old_channel.unary_unary(METHOD)(b"", timeout=5)).decode() == "router"
    finally:
        await old_channel.close()


async def test_a_broken_rotation_keeps_serving_the_last_good_certificate(
    server: Server, pki: Pki
) -> None:
    valid = pki.clients["valid"]
    (server.dir / "tls.crt").write_bytes(b"-----BEGIN CERTIFICATE-----\nMIIB")  # half-written
    assert await served_serial(server, valid, pki.ca) == pki.server.serial
    assert await call(server, pki.ca, valid) == "router"
    mismatched = server_cert(pki.ca)
    (server.dir / "tls.crt").write_bytes(mismatched.cert_pem)  # key not replaced yet
    assert await call(server, pki.ca, valid) == "router"
    assert await served_serial(server, valid, pki.ca) == pki.server.serial
    (server.dir / "tls.key").write_bytes(mismatched.key_pem)  # now complete
    assert await served_serial(server, valid, pki.ca) == mismatched.serial
    assert server.files.generation == 1


async def test_two_listeners_on_one_tls_files_rotate_independently(
    tmp_path: Path, pki: Pki
) -> None:
    """Data and admin listeners each need their own credentials object (gRPC hands the initial
    configuration to the first server only); both follow the same files."""
    files = TlsFiles(
        *write_server_files(tmp_path / "tls", pki.server, pki.ca), min_check_interval_s=0
    )
    servers = [grpc.aio.server(), grpc.aio.server()]
    ports = [s.add_secure_port("127.0.0.1:0", server_credentials(files)) for s in servers]
    for s in servers:
        await s.start()
    try:
        views = [Server(p, tmp_path / "tls", files) for p in ports]
        valid = pki.clients["valid"]
        assert [await served_serial(v, valid, pki.ca) for v in views] == [pki.server.serial] * 2
        rotated = server_cert(pki.ca)
        write_server_files(tmp_path / "tls", rotated, pki.ca)
        assert [await served_serial(v, valid, pki.ca) for v in views] == [rotated.serial] * 2
    finally:
        for s in servers:
            await s.stop(0)
