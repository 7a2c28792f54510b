"""Regression (issue 19 §6.2): the metrics port answered ``//metrics`` (the standard HTTP server
collapses leading slashes before the handler's path check) and refused ``HEAD /metrics`` with
405. Only ``GET`` and ``HEAD`` on exactly ``/metrics`` answer now (HEAD: headers, no body); every
other path is 404 and every other method 405. A real listener on a loopback port."""

from __future__ import annotations

import http.client
from collections.abc import Iterator

import pytest

from vault_server.observability.metrics import Metrics


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    metrics = Metrics()
    metrics.ready.set(1)
    bound = metrics.serve("127.0.0.1", 0)
    try:
        yield bound
    finally:
        metrics.stop()


def _send(port: int, method: str, target: str) -> tuple[int, dict[str, str], bytes]:
    """One request with the request target exactly as given (http.client does not rewrite it)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", f"127.0.0.1:{port}")
        conn.endheaders()
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_get_metrics_answers(port: int) -> None:
    status, headers, body = _send(port, "GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert b"pipvault_ready 1.0" in body


def test_head_metrics_is_200_with_headers_and_no_body(port: int) -> None:
    _, got, full = _send(port, "GET", "/metrics")
    status, headers, body = _send(port, "HEAD", "/metrics")
    assert status == 200 and body == b""
    assert headers["Content-Type"] == got["Content-Type"]
    assert int(headers["Content-Length"]) == len(full)


@pytest.mark.parametrize(
    "target",
    ["//metrics", "///metrics", "//metrics?x=1", "/metrics/", "/metrics/x", "/./metrics",
     "/%6detrics", "/Metrics", "http://127.0.0.1/metrics", "/", "*", "/favicon.ico"],
)  # fmt: skip
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_any_other_path_is_404(port: int, method: str, target: str) -> None:
    status, _, body = _send(port, method, target)
    assert status == 404
    assert b"pipvault_" not in body


@pytest.mark.parametrize(
    "method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "PROPFIND"]
)
def test_any_other_method_is_405(port: int, method: str) -> None:
    status, _, body = _send(port, method, "/metrics")
    assert status == 405
    assert b"pipvault_" not in body
