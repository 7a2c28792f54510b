"""Checkpoint lines: Ed25519 signatures, another key, tampering, key files, sinks, backoff."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vault_server.alerts.checkpoint_sinks import FileSink, StdoutSink
from vault_server.alerts.pager_sender import Backoff
from vault_server.audit._checkpoints import (
    Checkpoint,
    CheckpointHead,
    CheckpointInvalid,
    CheckpointKeyError,
    CheckpointSigner,
    create_signing_key,
    load_public_key,
    load_signing_key,
    parse_line,
    read_checkpoints,
)
from vault_server.core.secret import Secret

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
HEADS = {"system": CheckpointHead(3, "a" * 64), "u-1": CheckpointHead(9, "b" * 64, "workspaces/x")}


def signer() -> CheckpointSigner:
    return CheckpointSigner(Secret(Ed25519PrivateKey.generate().private_bytes_raw()))


def test_sign_and_parse_round_trip() -> None:
    s = signer()
    line = s.line(Checkpoint(T0, s.key_id, HEADS))
    assert "\n" not in line and "sig" in json.loads(line)
    cp = parse_line(line, s.public_key)
    assert cp.heads == HEADS and cp.time == T0 and cp.key_id == s.key_id


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (lambda d: d["heads"]["u-1"].update(seq=8), "bad signature"),
        (lambda d: d["heads"].pop("u-1"), "bad signature"),
        (lambda d: d.update(time="2027-01-01T00:00:00+00:00"), "bad signature"),
        (lambda d: d.update(sig=base64.b64encode(b"\0" * 64).decode()), "bad signature"),
        (lambda d: d.pop("sig"), "malformed checkpoint"),
        (lambda d: d.update(v=2), "not a version 1 checkpoint"),
    ],
)
def test_any_edit_breaks_the_signature(edit, why: str) -> None:  # type: ignore[no-untyped-def]
    s = signer()
    doc = json.loads(s.line(Checkpoint(T0, s.key_id, HEADS)))
    edit(doc)
    with pytest.raises(CheckpointInvalid, match=why):
        parse_line(json.dumps(doc), s.public_key)


def test_a_checkpoint_signed_by_another_key_is_rejected() -> None:
    mine, theirs = signer(), signer()
    forged = theirs.line(Checkpoint(T0, theirs.key_id, HEADS))
    with pytest.raises(CheckpointInvalid, match="signed by another key"):
        parse_line(forged, mine.public_key)
    # Even claiming our key id does not help: the signature is checked against our key.
    doc = json.loads(forged)
    doc["key_id"] = mine.key_id
    with pytest.raises(CheckpointInvalid, match="bad signature"):
        parse_line(json.dumps(doc), mine.public_key)


def test_reading_a_file_keeps_the_latest_valid_and_reports_bad_lines(tmp_path: Path) -> None:
    s, other = signer(), signer()
    path = tmp_path / "cp.jsonl"
    sink = FileSink(path)
    sink.write(s.line(Checkpoint(T0, s.key_id, HEADS)))
    newer = {"system": CheckpointHead(4, "c" * 64)}
    sink.write(s.line(Checkpoint(T0 + dt.timedelta(minutes=1), s.key_id, newer)))
    with path.open("a") as fh:
        fh.write("some unrelated log line\n\n")
        fh.write(other.line(Checkpoint(T0 + dt.timedelta(minutes=2), other.key_id, {})) + "\n")
        fh.write('{"type": "pipvault.audit.checkpoint", garbage\n')
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    log = read_checkpoints(path, s.public_key)
    assert log.count == 2 and log.latest is not None and log.latest.heads == newer
    assert log.invalid == [(5, "signed by another key"), (6, "malformed checkpoint")]
    with pytest.raises(CheckpointKeyError):
        read_checkpoints(tmp_path / "missing.jsonl", s.public_key)


def test_key_files(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "audit.key"
    seed = create_signing_key(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert load_signing_key(path) == seed
    public = load_public_key(Path(f"{path}.pub"))
    s = CheckpointSigner(seed)
    assert parse_line(s.line(Checkpoint(T0, s.key_id, HEADS)), public).heads == HEADS
    raw_pub = tmp_path / "raw.pub"
    raw_pub.write_text(base64.b64encode(s.public_key.public_bytes_raw()).decode())
    assert load_public_key(raw_pub).public_bytes_raw() == s.public_key.public_bytes_raw()
    with pytest.raises(FileExistsError):
        create_signing_key(path)  # never overwrites
    path.chmod(0o640)
    with pytest.raises(CheckpointKeyError, match="group or others"):
        load_signing_key(path)
    bad = tmp_path / "bad.pub"
    bad.write_text("not a key")
    with pytest.raises(CheckpointKeyError):
        load_public_key(bad)
    with pytest.raises(CheckpointKeyError):
        CheckpointSigner(Secret(b"short"))


def test_stdout_sink_writes_the_same_line() -> None:
    out = io.StringIO()
    StdoutSink(out).write('{"a":1}')
    assert out.getvalue() == '{"a":1}\n'
    with pytest.raises(ValueError):
        StdoutSink(out).write("two\nlines")


def test_backoff_grows_with_jitter_and_caps() -> None:
    b = Backoff(base_s=1.0, cap_s=60.0)
    assert [b.delay(n, 0.0) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert b.delay(3, 0.999) < 4.0 and b.delay(3, 0.5) == 3.0
    assert b.delay(30, 1.0) == 60.0
