"""Wiring of the audit subsystem around the AuditLog: the reader (and its streams), signed
checkpoints and their sinks, verification (on request and scheduled) whose breaks page the
on-call, and the SIEM event sink."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vault_server.alerts.checkpoint_sinks import FileSink, StdoutSink
from vault_server.audit import (
    AuditCheckpointer,
    AuditEventSink,
    AuditLog,
    AuditReader,
    AuditVerifier,
    CheckpointKeyError,
    CheckpointSigner,
    Position,
    build_writer,
    create_signing_key,
    file_checkpoints,
    load_signing_key,
)
from vault_server.config import ConfigError, Settings
from vault_server.core.clock import Clock
from vault_server.domain import PageTokens
from vault_server.observability.logging import get_logger
from vault_server.paging import FOUND_BY_RPC, AuditIntegrityPager, Pager, ScheduledVerification
from vault_server.storage.database import Database

_log = get_logger("pipvault.app")


@dataclass(frozen=True)
class AuditParts:
    reader: AuditReader
    alarm: AuditIntegrityPager
    checkpointer: AuditCheckpointer
    verifier: AuditVerifier
    scheduled_verification: ScheduledVerification
    event_sink: AuditEventSink | None


def build_audit(
    settings: Settings,
    db: Database,
    audit: AuditLog,
    pages: PageTokens,
    pager: Pager,
    clock: Clock,
    chain_key: bytes,
) -> AuditParts:
    reader = AuditReader(db, audit, pages, poll_interval_s=settings.audit.stream_poll_interval_s)
    signer, sinks, cp_file = checkpoint_parts(settings)
    alarm = AuditIntegrityPager(db, pager)
    checkpointer = AuditCheckpointer(
        reader.store,
        signer,
        sinks,
        clock,
        interval_s=settings.audit.checkpoint_interval_s,
        heartbeat_s=settings.audit.checkpoint_heartbeat_s,
        on_regression=alarm.regression_reporter(),
    )
    checkpoints = file_checkpoints(cp_file, signer.public_key) if cp_file else None
    verifier = AuditVerifier(
        reader, chain_key, checkpoints=checkpoints, on_broken=alarm.reporter(FOUND_BY_RPC)
    )
    scheduled = ScheduledVerification(reader.store, chain_key, alarm, checkpoints=checkpoints)
    return AuditParts(
        reader, alarm, checkpointer, verifier, scheduled, event_sink(settings, reader)
    )


def event_sink(settings: Settings, reader: AuditReader) -> AuditEventSink | None:
    """``audit.event_sink``: every committed audit event as a JSON line (None when off)."""
    cfg = settings.audit
    if cfg.event_sink == "none":
        return None
    position = cfg.event_position_file
    if position is None:
        position = (
            cfg.event_file.with_name(cfg.event_file.name + ".position")
            if cfg.event_file is not None
            else settings.home / "audit-events.position"
        )
    return AuditEventSink(
        reader.store, build_writer(cfg.event_sink, cfg.event_file), Position(position)
    )


def checkpoint_parts(settings: Settings) -> tuple[CheckpointSigner, list[Any], Path | None]:
    """The checkpoint signer and its sinks; dev mode creates its key under ``home``, loudly."""
    audit = settings.audit
    key_file = audit.checkpoint_key_file or settings.home / "audit-checkpoint.key"
    cp_file = audit.checkpoint_file or (
        settings.home / "audit-checkpoints.jsonl" if settings.mode == "dev" else None
    )
    try:
        if settings.mode == "dev" and not key_file.exists():
            create_signing_key(key_file)
            _log.warning("audit.dev_checkpoint_key_created", path=str(key_file))
        signer = CheckpointSigner(load_signing_key(key_file))
    except CheckpointKeyError as exc:
        raise ConfigError(f"audit.checkpoint_key_file: {exc}") from exc
    sinks: list[Any] = []
    if audit.checkpoint_sink in ("file", "both") and cp_file is not None:
        sinks.append(FileSink(cp_file))
    if audit.checkpoint_sink in ("stdout", "both"):
        sinks.append(StdoutSink())
    return signer, sinks, cp_file if audit.checkpoint_sink != "stdout" else None
