"""Prometheus metrics. Labels are method names, status codes and reasons: never identifiers
that could carry secrets or unbounded cardinality."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.rpc_total = Counter(
            "pipvault_rpc_total",
            "RPCs handled",
            ["method", "code", "reason"],
            registry=self.registry,
        )
        self.rpc_seconds = Histogram(
            "pipvault_rpc_duration_seconds",
            "RPC latency",
            ["method"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
            registry=self.registry,
        )
        self.in_flight = Gauge("pipvault_rpc_in_flight", "RPCs in flight", registry=self.registry)
        self.ready = Gauge("pipvault_ready", "1 when serving", registry=self.registry)
        self.shed = Counter(
            "pipvault_rpc_shed_total",
            "Calls refused by the concurrency cap or a rate limit",
            registry=self.registry,
        )
        self.audit_failures = Counter(
            "pipvault_audit_write_failures_total",
            "Audit writes that failed",
            registry=self.registry,
        )
        self.audit_batch_retries = Counter(
            "pipvault_audit_batch_retries_total",
            "Signing batches run again after losing a database race (deadlock victim)",
            registry=self.registry,
        )
        # Signing hot path. Labels are venue ids and outcome words from a fixed vocabulary.
        self.signatures = Counter(
            "pipvault_signatures_total",
            "SignOrder/ExecuteOrder calls by venue and outcome (signed, sent, refused, failed)",
            ["venue", "outcome"],
            registry=self.registry,
        )
        # Venue sessions (forex/CFD): logins and refreshes by venue, kind and outcome (success,
        # refused: the venue refused the login; failed: not reached; lost: the grant is gone).
        self.session_renewals = Counter(
            "pipvault_venue_session_renewals_total",
            "Venue-session logins and refreshes by venue, kind and outcome",
            ["venue", "kind", "outcome"],
            registry=self.registry,
        )
        self.audit_write_seconds = Histogram(
            "pipvault_audit_write_seconds",
            "Time from an audit event being queued to its transaction being durable",
            buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2),
            registry=self.registry,
        )
        self.audit_batch_size = Histogram(
            "pipvault_audit_batch_size",
            "Audit events (and their signatures) committed together in one transaction",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )
        self.dek_cache_hits = Counter(
            "pipvault_dek_cache_hits_total",
            "Unwrapped data keys served from the in-memory cache",
            registry=self.registry,
        )
        self.dek_cache_misses = Counter(
            "pipvault_dek_cache_misses_total",
            "Data keys that had to be unwrapped by the key provider",
            registry=self.registry,
        )
        # Key providers (KMS, transit, HSM, local keyring). Labels: provider kind and operation.
        self.kms_seconds = Histogram(
            "pipvault_kms_request_seconds",
            "Key-provider call latency",
            ["provider", "operation"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5),
            registry=self.registry,
        )
        self.kms_errors = Counter(
            "pipvault_kms_errors_total",
            "Key-provider calls that failed",
            ["provider", "operation"],
            registry=self.registry,
        )
        # Pager outbox.
        self.pager_backlog = Gauge(
            "pipvault_pager_backlog",
            "Pages in the outbox not yet delivered",
            registry=self.registry,
        )
        self.pager_delivery_failures = Counter(
            "pipvault_pager_delivery_failures_total",
            "Page delivery attempts that failed (retried)",
            registry=self.registry,
        )
        self.pages_delivered = Counter(
            "pipvault_pages_delivered_total",
            "Pages delivered to the pager",
            registry=self.registry,
        )
        # Readiness detail: 1 while a component is degraded but the vault can still sign.
        self.degraded = Gauge(
            "pipvault_degraded",
            "1 while a component (storage, key_provider, audit) is degraded",
            ["component"],
            registry=self.registry,
        )

    def serve(self, host: str, port: int) -> int:
        """Start the HTTP listener (``GET``/``HEAD /metrics`` only; 404 for any other path, 405
        for any other method) in a daemon thread; returns the bound port. ``OSError`` if it cannot
        bind."""
        server = _MetricsServer((host, port), _MetricsHandler, self.registry)
        threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
        self._server = server
        return int(server.server_port)

    def stop(self) -> None:
        server = getattr(self, "_server", None)
        if server is not None:
            server.shutdown()
            server.server_close()


class _MetricsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        registry: CollectorRegistry,
    ) -> None:
        if ":" in address[0]:
            import socket

            self.address_family = socket.AF_INET6
        super().__init__(address, handler)
        self.registry = registry


class _MetricsHandler(BaseHTTPRequestHandler):
    """``GET``/``HEAD`` on exactly ``/metrics``; 404 for any other path, 405 for any other method.

    The path is read from the request line as sent: ``BaseHTTPRequestHandler`` collapses leading
    slashes in ``self.path`` (against open redirects), which made ``//metrics`` answer too.
    """

    server: _MetricsServer
    server_version = "pipvault"
    sys_version = ""

    def do_GET(self) -> None:
        if not self._is_metrics():
            self._plain(404, b"not found: this listener serves /metrics only\n")
            return
        body = generate_latest(self.server.registry)
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_GET  # noqa: N815

    def _is_metrics(self) -> bool:
        words = self.requestline.split()
        target = words[1] if len(words) >= 2 else ""
        return target.split("?", 1)[0] == "/metrics"

    def _refuse(self) -> None:
        self._plain(405, b"method not allowed\n")

    def __getattr__(self, name: str) -> Callable[[], None]:
        # Every other method (POST, TRACE, CONNECT, made-up ones) is 405, not the base 501.
        if name.startswith("do_"):
            return self._refuse
        raise AttributeError(name)

    def _plain(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return  # scrapes are not worth a log line each (and paths are caller-chosen text)
