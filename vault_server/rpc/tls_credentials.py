"""gRPC server credentials for mTLS listeners, following ``auth.tls.TlsFiles`` on disk.

gRPC calls the fetcher at each new handshake (on its own threads); it answers None while the
listener already has the newest good material. Each listener needs its own credentials object:
gRPC gives the initial configuration to the first server that uses one.
"""

from __future__ import annotations

import grpc

from vault_server.auth.tls import TlsFiles, TlsMaterial


def _config(m: TlsMaterial) -> grpc.ServerCertificateConfiguration:
    return grpc.ssl_server_certificate_configuration(
        [(m.private_key_pem, m.certificate_chain_pem)], root_certificates=m.client_ca_pem
    )


def mtls_server_credentials(files: TlsFiles) -> grpc.ServerCredentials:
    """Credentials for one listener: client certificates from ``files``' CA are required."""
    sub = files.subscribe()

    def fetcher() -> grpc.ServerCertificateConfiguration | None:
        m = sub.poll()
        return None if m is None else _config(m)

    return grpc.dynamic_ssl_server_credentials(
        _config(sub.initial),
        fetcher,  # type: ignore[arg-type]  # the stubs miss that None means "no change"
        require_client_authentication=True,
    )
