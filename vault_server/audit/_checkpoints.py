"""Signed checkpoints of every chain head, exported outside the database.

A hash chain alone cannot show that its tail was cut off (or that someone holding the chain key
rewrote it): the remaining rows still link. So every ``interval`` the vault reads each chain's
head ``(seq, hash)``, signs the set with its Ed25519 audit key and appends it to sinks outside
the database. The verifier then refuses a chain that ends before, or disagrees with, the latest
validly signed checkpoint.

One checkpoint is one JSON line::

    {"type": "pipvault.audit.checkpoint", "v": 1, "time": "...Z", "key_id": "<16 hex>",
     "heads": {"<chain id>": {"seq": 12, "hash": "<hex>", "workspace": "workspaces/acme"}},
     "sig": "<base64 Ed25519 over the canonical JSON of every other field>"}

Lines without the type marker are ignored (a collected stdout log may hold other lines); a line
with the marker that does not parse or verify is reported, never skipped silently.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from vault_server.alerts.checkpoint_sinks import CheckpointSink, read_lines
from vault_server.audit._store import ChainStore
from vault_server.core.clock import Clock
from vault_server.core.secret import Secret

TYPE = "pipvault.audit.checkpoint"
_CONTEXT = b"pipvault-audit-checkpoint-v1\n"


class CheckpointKeyError(Exception):
    """A key file is missing, unreadable, too permissive or not an Ed25519 key."""


class CheckpointInvalid(Exception):
    """A checkpoint line does not parse, or its signature does not verify."""


@dataclass(frozen=True)
class CheckpointHead:
    seq: int
    hash: str
    workspace: str = ""  # `workspaces/{ws}`, or "" for the system chain


@dataclass(frozen=True)
class HeadRegression:
    """A chain head that went back from (or differs at) the last signed checkpoint's."""

    chain_id: str
    signed: CheckpointHead
    now: CheckpointHead | None  # None: the chain is gone


@dataclass(frozen=True)
class Checkpoint:
    time: dt.datetime
    key_id: str
    heads: dict[str, CheckpointHead]


@dataclass(frozen=True)
class CheckpointLog:
    """What a checkpoints file proves: its latest valid checkpoint, and any bad lines."""

    source: str
    latest: Checkpoint | None = None
    count: int = 0
    invalid: list[tuple[int, str]] = field(default_factory=list)


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _body(cp: Checkpoint) -> dict[str, Any]:
    heads = {
        cid: {"seq": h.seq, "hash": h.hash, "workspace": h.workspace}
        for cid, h in sorted(cp.heads.items())
    }
    when = cp.time.astimezone(dt.UTC).isoformat(timespec="microseconds")
    return {"type": TYPE, "v": 1, "time": when, "key_id": cp.key_id, "heads": heads}


def _signed_bytes(body: dict[str, Any]) -> bytes:
    return _CONTEXT + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


class CheckpointSigner:
    """Signs checkpoints with the audit key (a 32-byte Ed25519 seed held as a ``Secret``)."""

    def __init__(self, private_key: Secret) -> None:
        if len(private_key) != 32:
            raise CheckpointKeyError("the audit checkpoint key must be a 32-byte Ed25519 seed")
        self._key = Ed25519PrivateKey.from_private_bytes(private_key.reveal())
        self.public_key = self._key.public_key()
        self.key_id = key_id(self.public_key)

    def line(self, checkpoint: Checkpoint) -> str:
        body = _body(checkpoint)
        sig = base64.b64encode(self._key.sign(_signed_bytes(body))).decode()
        return json.dumps({**body, "sig": sig}, sort_keys=True, separators=(",", ":"))


def parse_line(text: str, public_key: Ed25519PublicKey) -> Checkpoint:
    """Parse one checkpoint line and verify its signature against ``public_key``."""
    try:
        doc = json.loads(text)
        if not isinstance(doc, dict) or doc.get("type") != TYPE or doc.get("v") != 1:
            raise CheckpointInvalid("not a version 1 checkpoint")
        sig = base64.b64decode(str(doc.pop("sig")), validate=True)
        if doc.get("key_id") != key_id(public_key):
            raise CheckpointInvalid("signed by another key")
        public_key.verify(sig, _signed_bytes(doc))
        heads = {
            str(cid): CheckpointHead(int(h["seq"]), str(h["hash"]), str(h.get("workspace", "")))
            for cid, h in dict(doc["heads"]).items()
        }
        when = dt.datetime.fromisoformat(str(doc["time"]))
    except CheckpointInvalid:
        raise
    except InvalidSignature as exc:
        raise CheckpointInvalid("bad signature") from exc
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise CheckpointInvalid("malformed checkpoint") from exc
    return Checkpoint(when, str(doc["key_id"]), heads)


def read_checkpoints(path: Path, public_key: Ed25519PublicKey) -> CheckpointLog:
    """Verify every checkpoint line of ``path``; the latest valid one is what chains must reach.

    Raises:
        CheckpointKeyError: the file cannot be read.
    """
    latest: Checkpoint | None = None
    count, invalid = 0, []
    try:
        for number, text in read_lines(path):
            if TYPE not in text:
                continue
            try:
                cp = parse_line(text, public_key)
            except CheckpointInvalid as exc:
                invalid.append((number, str(exc)))
                continue
            count += 1
            if latest is None or cp.time >= latest.time:
                latest = cp
    except OSError as exc:
        raise CheckpointKeyError(f"cannot read checkpoints {path}: {exc.strerror}") from exc
    return CheckpointLog(str(path), latest, count, invalid)


def file_checkpoints(
    path: Path, public_key: Ed25519PublicKey
) -> Callable[[], CheckpointLog | None]:
    """For the online verifier: the checkpoints file as it is now (None before the first)."""

    def load() -> CheckpointLog | None:
        return read_checkpoints(path, public_key) if path.exists() else None

    return load


# --- keys ----------------------------------------------------------------------------------------
def create_signing_key(path: Path) -> Secret:
    """Generate a key (dev mode, or an operator's one-off): ``path`` (0600, base64 seed) and
    ``path.pub`` (PEM public key, for whoever verifies). Never overwrites."""
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(base64.b64encode(seed) + b"\n")
        fh.flush()
        os.fsync(fh.fileno())
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    Path(f"{path}.pub").write_bytes(pem)
    return Secret(seed)


def load_signing_key(path: Path) -> Secret:
    """The 32-byte seed from a 0600 file holding it in base64."""
    try:
        if path.stat().st_mode & 0o077:
            raise CheckpointKeyError(f"{path} must not be readable by group or others")
        raw = base64.b64decode(path.read_bytes().strip(), validate=True)
    except OSError as exc:
        raise CheckpointKeyError(f"cannot read {path}: {exc.strerror}") from exc
    except (binascii.Error, ValueError) as exc:
        raise CheckpointKeyError(f"{path} must hold a base64 Ed25519 seed") from exc
    if len(raw) != 32:
        raise CheckpointKeyError(f"{path} must hold a 32-byte Ed25519 seed")
    return Secret(raw)


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A PEM (SubjectPublicKeyInfo) or base64 raw 32-byte Ed25519 public key."""
    try:
        data = path.read_bytes().strip()
    except OSError as exc:
        raise CheckpointKeyError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        if data.startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(data)
            if not isinstance(key, Ed25519PublicKey):
                raise CheckpointKeyError(f"{path} is not an Ed25519 public key")
            return key
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(data, validate=True))
    except (ValueError, binascii.Error) as exc:
        raise CheckpointKeyError(f"{path} is not an Ed25519 public key") from exc


# --- the periodic job ----------------------------------------------------------------------------
class AuditCheckpointer:
    """Reads every chain head, signs, exports. ``tick()`` is the periodic job (it skips a
    checkpoint when nothing changed, up to ``heartbeat_s``); ``checkpoint_now()`` always writes.

    A head that went back from the last checkpoint this process signed (rows cut off and the head
    rewound), or that has the same seq but another hash, is never signed: the new checkpoint
    keeps the signed head, so verifiers go on reporting the break, and ``on_regression`` hears of
    it (the composition root pages)."""

    def __init__(
        self,
        store: ChainStore,
        signer: CheckpointSigner,
        sinks: Sequence[CheckpointSink],
        clock: Clock,
        *,
        interval_s: float = 60.0,
        heartbeat_s: float = 3600.0,
        on_regression: Callable[[list[HeadRegression]], object] | None = None,
    ) -> None:
        self._on_regression = on_regression
        if not sinks:
            raise ValueError("at least one checkpoint sink is required")
        self._store = store
        self._signer = signer
        self._sinks = list(sinks)
        self._clock = clock
        self.interval_s = interval_s
        self._heartbeat_s = heartbeat_s
        self._last: Checkpoint | None = None

    def heads(self) -> dict[str, CheckpointHead]:
        out: dict[str, CheckpointHead] = {}
        for chain in self._store.chains(None):
            head = self._store.head(chain)
            if head is not None:
                name = chain.name if chain.workspace_id else ""
                out[chain.id] = CheckpointHead(head.seq, head.hash, name)
        return out

    def _regressions(self, heads: dict[str, CheckpointHead]) -> list[HeadRegression]:
        last = self._last
        if last is None:
            return []
        found = []
        for cid, signed in sorted(last.heads.items()):
            now = heads.get(cid)
            if now is None or now.seq < signed.seq or (now.seq == signed.seq and now != signed):
                found.append(HeadRegression(cid, signed, now))
        return found

    def checkpoint_now(self) -> Checkpoint:
        heads = self.heads()
        regressions = self._regressions(heads)
        for r in regressions:
            heads[r.chain_id] = r.signed  # never sign over a cut or rewritten chain
        if regressions and self._on_regression is not None:
            self._on_regression(regressions)
        cp = Checkpoint(self._clock.now(), self._signer.key_id, heads)
        line = self._signer.line(cp)
        for sink in self._sinks:
            sink.write(line)
        self._last = cp
        return cp

    def tick(self) -> Checkpoint | None:
        last = self._last
        if last is not None:
            age = (self._clock.now() - last.time).total_seconds()
            if age < self._heartbeat_s and self.heads() == last.heads:
                return None
        return self.checkpoint_now()
