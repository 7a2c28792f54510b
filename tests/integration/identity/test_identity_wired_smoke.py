from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from pipsync.vault.v1 import workspace_service_pb2, workspace_service_pb2_grpc

from tests.support.certs import ROUTER_ID, TRUST_DOMAIN, build_pki, issue, write_server_files
from tests.support.errors import call_error
from tests.support.vault import start_vault


def test_wired(tmp_path: Path) -> None:
    pki = build_pki()
    cert, key, ca = write_server_files(tmp_path / "tls", pki.server, pki.ca)
    sec_id = f"spiffe://{TRUST_DOMAIN}/ns/sec/sa/admin"
    roles = {
        "sec": {
            "type": "user",
            "roles": ["security"],
            "workspaces": ["*"],
            "spiffe_id": sec_id,
            "rate_limit_per_s": 1,
        }
    }
    v = start_vault(
        tmp_path / "home",
        roles=roles,
        tls={"cert_file": str(cert), "key_file": str(key), "client_ca_file": str(ca)},
        identity={"spiffe_trust_domain": TRUST_DOMAIN},
    )
    try:
        client = issue(pki.ca, "sec", uris=[sec_id])
        creds = grpc.ssl_channel_credentials(pki.ca.cert_pem, client.key_pem, client.cert_pem)
        ch = grpc.secure_channel(v.admin_target, creds)
        stub = workspace_service_pb2_grpc.WorkspaceServiceStub(ch)
        stub.ListWorkspaces(workspace_service_pb2.ListWorkspacesRequest(), timeout=5)
        stub.ListWorkspaces(workspace_service_pb2.ListWorkspacesRequest(), timeout=5)
        with pytest.raises(grpc.RpcError) as info:
            stub.ListWorkspaces(workspace_service_pb2.ListWorkspacesRequest(), timeout=5)
        err = call_error(info.value)
        print(err)
        assert err.code == grpc.StatusCode.RESOURCE_EXHAUSTED and err.reason == "RATE_LIMITED"
        bad = issue(pki.ca, "x", uris=[sec_id, ROUTER_ID])
        ch2 = grpc.secure_channel(
            v.admin_target, grpc.ssl_channel_credentials(pki.ca.cert_pem, bad.key_pem, bad.cert_pem)
        )
        with pytest.raises(grpc.RpcError) as info:
            workspace_service_pb2_grpc.WorkspaceServiceStub(ch2).ListWorkspaces(
                workspace_service_pb2.ListWorkspacesRequest(), timeout=5
            )
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        import time

        time.sleep(1.1)
        ch3 = grpc.secure_channel(
            v.admin_target, grpc.ssl_channel_credentials(pki.ca.cert_pem, bad.key_pem, bad.cert_pem)
        )
        print(
            workspace_service_pb2_grpc.WorkspaceServiceStub(ch3).ListWorkspaces(
                workspace_service_pb2.ListWorkspacesRequest(), timeout=5, metadata=v.md("sec")
            )
        )
    finally:
        v.stop()
