"""Pages for reads outside a routing context, through the outbox to a loopback HTTP receiver
acting as PagerDuty (or a webhook): one page per dedup key, retries, giving up, and a process
killed between the commit and the delivery (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from tests.integration.audit.audit_harness import ROOT, Log, make_log
from vault_server.alerts.notifiers import PagerDutyNotifier, WebhookNotifier
from vault_server.alerts.pager_sender import Backoff, PagerSender
from vault_server.audit._log import AuditRecord, Outcome
from vault_server.core.clock import FixedClock, SystemClock, SystemRandom
from vault_server.core.secret import Secret
from vault_server.observability.metrics import Metrics
from vault_server.paging._outbox import Pager, SqlOutbox
from vault_server.storage.models import PagerOutbox
from vault_server.storage.tenant import bind_workspace

ROUTING_KEY = "R0UT1NGKEY-0123456789abcdef0123"
CRED = "workspaces/ws-a/credentials/c1"


class Receiver:
    """A loopback HTTP server answering with scripted status codes (then 202)."""

    def __init__(self, script: list[int] | None = None) -> None:
        self.script = list(script or [])
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                outer.requests.append((self.path, dict(self.headers), body))
                status = outer.script.pop(0) if outer.script else 202
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"status":"success"}')

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(b) for _, _, b in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def log(database_url: str) -> Iterator[Log]:
    log = make_log(database_url)
    try:
        yield log
    finally:
        log.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def read_outside_context(log: Log, pager: Pager, *, reason: str = "debugging") -> None:
    """What the signing service does for a sign without a routing context: one audit row and,
    in the same transaction, a page."""
    ws = log.workspaces["ws-a"]
    record = AuditRecord(
        action="credential.read",
        outcome=Outcome.DENIED,
        workspace_id=ws.id,
        workspace="workspaces/ws-a",
        credential=CRED,
        error_reason="ROUTING_CONTEXT_REQUIRED",
        details={"operation": "place", "mode": "sign"},
    )
    with log.db.transaction() as s:
        bind_workspace(s, ws.id)
        row = log.audit.append(s, log.ctx("router-7", reason), record)
        pager.hook(s, log.ctx("router-7", reason), record, row.seq, row.hash)


def sender(log: Log, url: str, **kw: Any) -> PagerSender:
    notifier = PagerDutyNotifier(Secret(ROUTING_KEY), url=url, timeout_s=2)
    backoff = Backoff(base_s=0.02, cap_s=0.1)
    return PagerSender(
        SqlOutbox(log.db, SystemClock()), notifier, SystemRandom(), backoff=backoff, **kw
    )


def deliver_until_settled(s: PagerSender, outbox: SqlOutbox, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while outbox.pending() and time.monotonic() < deadline:
        s.deliver_due()
        time.sleep(0.02)
    assert outbox.pending() == 0


def outbox_rows(log: Log) -> list[PagerOutbox]:
    with log.db.transaction() as s:
        return list(s.scalars(select(PagerOutbox).order_by(PagerOutbox.id)))


def test_ten_reads_in_one_bucket_page_exactly_once_without_secrets(
    log: Log, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    # Start just inside a bucket, so the ten reads (ten seconds) cannot straddle a boundary.
    start = (int(dt.datetime.now(dt.UTC).timestamp()) - 3600) // 600 * 600 + 1
    clock = FixedClock(dt.datetime.fromtimestamp(start, dt.UTC))
    pager = Pager(clock, bucket_s=600, source="pod-1/pipvault")
    for _ in range(10):
        read_outside_context(log, pager)
        clock.advance(1)
    s, outbox = sender(log, receiver.url), SqlOutbox(log.db, SystemClock())
    assert s.drain(timeout_s=5).delivered == 1 and outbox.pending() == 0
    s.deliver_due()
    assert len(receiver.requests) == 1
    path, headers, raw = receiver.requests[0]
    body = json.loads(raw)
    bucket = int(clock.now().timestamp()) // 600
    assert path == "/v2/enqueue" and headers["content-type"] == "application/json"
    assert set(body) == {"routing_key", "event_action", "dedup_key", "payload"}
    assert body["routing_key"] == ROUTING_KEY and body["event_action"] == "trigger"
    assert body["dedup_key"] == f"pipvault:ctxless-read:ws-a:c1:{bucket}"
    page = body["payload"]
    assert page["severity"] == "critical" and page["source"] == "pod-1/pipvault"
    assert page["class"] == "credential.read.no_routing_context" and CRED in page["summary"]
    assert page["custom_details"] == {
        "workspace": "workspaces/ws-a",
        "credential": CRED,
        "actor": "router-7",
        "peer": "10.0.0.7",
        "reason": "debugging",
        "audit_event": "workspaces/ws-a/auditEvents/2",
        "audit_hash": page["custom_details"]["audit_hash"],
        "kind": "sign_without_routing_context",
    }
    # The routing key is added at send time only: never stored, never logged.
    rows = outbox_rows(log)
    assert len(rows) == 1 and rows[0].delivered_time is not None
    assert ROUTING_KEY not in json.dumps(rows[0].payload)
    assert ROUTING_KEY not in capsys.readouterr().err

    clock.advance(600)  # the next bucket pages again
    read_outside_context(log, pager)
    deliver_until_settled(s, outbox)
    assert len(receiver.requests) == 2
    assert receiver.bodies()[1]["dedup_key"].endswith(f":{bucket + 1}")


def test_duplicate_rows_of_one_key_still_deliver_one_page(log: Log, receiver: Receiver) -> None:
    """Two transactions racing past the insert check leave two rows; one page goes out."""
    now = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    with log.db.transaction() as s:
        for _ in range(2):
            s.add(PagerOutbox(workspace_id=None, dedup_key="pipvault:x", payload={"summary": "s"},
                              create_time=now, attempts=0, next_attempt_time=now, last_error=""))  # fmt: skip
    deliver_until_settled(sender(log, receiver.url), SqlOutbox(log.db, SystemClock()))
    assert len(receiver.requests) == 1
    assert [r.last_error for r in outbox_rows(log)] == ["", "deduplicated"]


def test_429_then_500_then_202_is_delivered_after_retries(
    log: Log, capsys: pytest.CaptureFixture[str]
) -> None:
    receiver = Receiver([429, 500, 202])
    metrics = Metrics()
    try:
        read_outside_context(log, Pager(SystemClock()))
        s = sender(log, receiver.url, metrics=metrics)
        deliver_until_settled(s, SqlOutbox(log.db, SystemClock()))
        keys = {b["dedup_key"] for b in receiver.bodies()}
        assert len(receiver.requests) == 3 and len(keys) == 1
        sample = metrics.registry.get_sample_value
        assert sample("pipvault_pager_delivery_failures_total") == 2
        assert sample("pipvault_pages_delivered_total") == 1
        (row,) = outbox_rows(log)
        assert row.delivered_time is not None and row.attempts == 3 and row.last_error == ""
    finally:
        receiver.close()
    assert ROUTING_KEY not in capsys.readouterr().err


def test_network_errors_retry_and_other_4xx_give_up(log: Log, receiver: Receiver) -> None:
    pager = Pager(SystemClock())
    read_outside_context(log, pager)
    closed = Receiver()
    closed.close()  # nothing listens there any more
    s, outbox = sender(log, closed.url), SqlOutbox(log.db, SystemClock())
    assert s.deliver_due().retried == 1
    (row,) = outbox_rows(log)
    assert row.delivered_time is None and row.last_error == "ConnectError" and outbox.pending() == 1

    receiver.script = [400]
    time.sleep(0.15)
    report = sender(log, receiver.url).deliver_due()
    assert report.gave_up == 1 and outbox.pending() == 0
    (row,) = outbox_rows(log)
    assert row.delivered_time is None and row.last_error == "gave up: HTTP 400"
    assert sender(log, receiver.url).deliver_due().handled == 0  # not retried
    read_outside_context(log, pager)  # a page given up on does not swallow the next read's
    deliver_until_settled(sender(log, receiver.url), outbox)
    assert len(receiver.requests) == 2
    read_outside_context(log, Pager(SystemClock(), bucket_s=1))  # still pending: kept
    time.sleep(0.05)
    assert outbox.prune(older_than_s=0.01) == 2 and len(outbox_rows(log)) == 1


def test_webhook_payload_is_signed(log: Log, receiver: Receiver) -> None:
    read_outside_context(log, Pager(SystemClock()))
    key = Secret(b"w" * 32)
    notifier = WebhookNotifier(f"{receiver.url}/hooks/pipvault", signing_key=key, timeout_s=2)
    outbox = SqlOutbox(log.db, SystemClock())
    PagerSender(outbox, notifier, SystemRandom()).deliver_due()
    ((path, headers, raw),) = receiver.requests
    assert path == "/hooks/pipvault" and "routing_key" not in json.loads(raw)
    mac = hmac.new(b"w" * 32, raw, hashlib.sha256).hexdigest()
    assert headers["x-pipvault-signature"] == f"sha256={mac}"


WRITER = """
import base64, os, sys, time
sys.path.insert(0, os.environ["ROOT"])
from vault_server.core.clock import SystemClock
from vault_server.audit._log import AuditLog, AuditRecord, Outcome
from vault_server.domain._call import Actor, ActorType, CallContext
from vault_server.paging._outbox import Pager
from vault_server.storage.database import Database
from vault_server.storage.tenant import bind_workspace

db = Database(os.environ["URL"])
audit = AuditLog(base64.b64decode(os.environ["CHAIN_KEY"]), SystemClock())
ctx = CallContext(Actor(ActorType.SERVICE, "router-7"), peer="10.0.0.9", reason="no context")
ws = os.environ["WS"]
record = AuditRecord("credential.read", Outcome.DENIED, workspace_id=ws,
                     workspace="workspaces/ws-a", credential="workspaces/ws-a/credentials/c1",
                     details={"purpose": "attestation"})
with db.transaction() as s:
    bind_workspace(s, ws)
    row = audit.append(s, ctx, record)
    Pager(SystemClock()).hook(s, ctx, record, row.seq, row.hash)
print("committed", flush=True)
time.sleep(60)  # this process has no sender: it dies before anything is delivered
"""


def test_kill_9_between_commit_and_delivery_still_pages_exactly_once(
    log: Log, receiver: Receiver
) -> None:
    env = {
        **os.environ,
        "ROOT": str(ROOT),
        "URL": log.url,
        "WS": log.chain_id("ws-a"),
        "CHAIN_KEY": __import__("base64").b64encode(log.chain_key).decode(),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "committed"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    assert receiver.requests == []
    outbox = SqlOutbox(log.db, SystemClock())
    assert outbox.pending() == 1

    # A sender that claims the page and dies before sending holds only a lease: it expires.
    # (The fresh sender is built before the claim so a loaded machine cannot outlast the lease.)
    fresh = sender(log, receiver.url)
    assert len(outbox.claim(10, lease_s=1.0)) == 1
    assert fresh.deliver_due().handled == 0
    time.sleep(1.05)
    deliver_until_settled(fresh, outbox)
    sender(log, receiver.url).deliver_due()
    assert len(receiver.requests) == 1
    details = receiver.bodies()[0]["payload"]["custom_details"]
    assert details["kind"] == "attestation" and details["actor"] == "router-7"
    assert details["audit_event"] == "workspaces/ws-a/auditEvents/2"


@pytest.mark.postgres
def test_the_sender_works_as_the_rls_bound_app_role(receiver: Receiver) -> None:
    """Row-level security binds pages to their workspace (migration 0005): a workspace's page and
    a system page are written by the app role, then claimed, delivered, counted and pruned by it
    through the named jobs (``pager_sender``, ``pager_prune``); a deduplicated second read finds
    the first page in its workspace's transaction."""
    from tests.support import pg
    from vault_server.domain._call import system_context

    admin, app = pg.provisioned_database()
    log = make_log(app)
    try:
        pager = Pager(SystemClock())
        read_outside_context(log, pager)
        read_outside_context(log, pager)  # same bucket: deduplicated in ws-a's transaction
        with log.db.transaction() as s:  # a refused call about no visible workspace
            record = AuditRecord(action="credential.read", outcome=Outcome.DENIED)
            row = log.audit.append(s, system_context("test"), record)
            pager.hook(s, system_context("test"), record, row.seq, row.hash)
        outbox = SqlOutbox(log.db, SystemClock())
        assert outbox.pending() == 2
        deliver_until_settled(sender(log, receiver.url), outbox)
        assert len(receiver.requests) == 2
        assert outbox.prune(0) == 2
        with pg_connect(admin) as conn:
            assert conn.execute("SELECT count(*) FROM pager_outbox").fetchone() == (0,)
    finally:
        log.close()
        pg.drop_database(admin)


def pg_connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
