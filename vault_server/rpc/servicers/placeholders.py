"""Servicers whose RPCs later capabilities implement; until then each RPC answers UNIMPLEMENTED
with an ErrorInfo (reason NOT_IMPLEMENTED)."""

from __future__ import annotations

from pipsync.vault.v1 import (
    audit_service_pb2,
    audit_service_pb2_grpc,
    credential_service_pb2,
    credential_service_pb2_grpc,
    key_service_pb2,
    key_service_pb2_grpc,
    signing_service_pb2,
    signing_service_pb2_grpc,
)

from vault_server.rpc.servicers.unimplemented import fill_unimplemented


class CredentialPlaceholder(credential_service_pb2_grpc.CredentialServiceServicer):
    pass


class SigningPlaceholder(signing_service_pb2_grpc.SigningServiceServicer):
    pass


class AuditPlaceholder(audit_service_pb2_grpc.AuditServiceServicer):
    pass


class KeyPlaceholder(key_service_pb2_grpc.KeyServiceServicer):
    pass


# fill_unimplemented adds every RPC at import time; mypy sees only the abstract base.
fill_unimplemented(
    CredentialPlaceholder, credential_service_pb2.DESCRIPTOR.services_by_name["CredentialService"]
)
fill_unimplemented(
    SigningPlaceholder, signing_service_pb2.DESCRIPTOR.services_by_name["SigningService"]
)
fill_unimplemented(AuditPlaceholder, audit_service_pb2.DESCRIPTOR.services_by_name["AuditService"])
fill_unimplemented(KeyPlaceholder, key_service_pb2.DESCRIPTOR.services_by_name["KeyService"])
