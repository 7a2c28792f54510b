"""Prometheus metrics. Labels are method names, status codes and reasons: never identifiers
that could carry secrets or unbounded cardinality."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


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

    def serve(self, host: str, port: int) -> int:
        """Start the /metrics HTTP endpoint; returns the bound port."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._server = server
        return int(server.server_port)

    def stop(self) -> None:
        server = getattr(self, "_server", None)
        if server is not None:
            server.shutdown()
            server.server_close()
