"""KeyService: status, KEK rotation and provider migration (admin plane)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pipsync.vault.v1 import key_service_pb2 as pb
from pipsync.vault.v1 import key_service_pb2_grpc as rpc

from vault_server.keys import KeyAdmin, ProviderReport
from vault_server.rpc.call_state import current
from vault_server.rpc.convert import timestamp
from vault_server.rpc.runner import BlockingRunner

_STATES = {
    "active": pb.KekVersion.STATE_ACTIVE,
    "decrypt_only": pb.KekVersion.STATE_DECRYPT_ONLY,
    "retired": pb.KekVersion.STATE_RETIRED,
}


def provider_msg(report: ProviderReport, wrap_limit: int) -> pb.KeyProviderStatus:
    msg = pb.KeyProviderStatus(
        provider_id=report.provider_id,
        kind=report.kind,
        primary=report.primary,
        healthy=report.healthy,
    )
    for v in report.versions:
        kv = msg.versions.add(
            version=v.version,
            state=_STATES.get(v.state, pb.KekVersion.STATE_UNSPECIFIED),
            wrap_count=v.wrap_count,
            wrap_limit=wrap_limit,
            ciphertext_count=v.ciphertext_count,
        )
        ts = timestamp(v.create_time)
        if ts is not None:
            kv.create_time.CopyFrom(ts)
    return msg


class KeyServicer(rpc.KeyServiceServicer):
    def __init__(self, admin: KeyAdmin, run: BlockingRunner) -> None:
        self._admin = admin
        self._run = run

    async def GetKeyStatus(self, request: pb.GetKeyStatusRequest, context: Any) -> Any:
        reports = await self._run(self._admin.status, current())
        limit = self._admin.wrap_limit
        return pb.GetKeyStatusResponse(providers=[provider_msg(r, limit) for r in reports])

    async def RotateKeyEncryptionKey(
        self, request: pb.RotateKeyEncryptionKeyRequest, context: Any
    ) -> Any:
        result = await self._run(self._admin.rotate, current(), request.provider_id)
        return pb.RotateKeyEncryptionKeyResponse(
            provider=provider_msg(result.report, self._admin.wrap_limit),
            new_version=result.new_version,
            rewrapped=result.rewrapped,
        )

    async def MigrateKeys(
        self, request: pb.MigrateKeysRequest, context: Any
    ) -> AsyncIterator[pb.MigrateKeysResponse]:
        ctx = current()
        progress = await self._run(
            self._admin.start_migration, ctx, request.target_provider_id, request.batch_size
        )
        while True:
            step = await self._run(next, progress, None)
            if step is None:
                return
            yield pb.MigrateKeysResponse(
                total=step.total, migrated=step.migrated, remaining=step.remaining, done=step.done
            )
