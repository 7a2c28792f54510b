"""Pager transports: PagerDuty Events API v2 and a generic JSON webhook.

The outbox stores only the non-secret page (``dedup_key`` + ``payload``); the PagerDuty routing key
is added here at send time, so it is never in the database, a log line or an error message. Each
send returns a ``SendResult`` saying whether to mark the page delivered, retry it later (429, 5xx,
network errors) or give up (any other 4xx: the request itself is wrong and will stay wrong).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from vault_server.core.secret import Secret

MAX_RETRY_AFTER_S = 300.0


class Verdict(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    GIVE_UP = "give_up"


@dataclass(frozen=True)
class SendResult:
    verdict: Verdict
    detail: str  # status code or exception class: never a URL, body or key
    retry_after_s: float | None = None


class Notifier(Protocol):
    def send(self, dedup_key: str, payload: dict[str, Any]) -> SendResult: ...

    def close(self) -> None: ...


def pagerduty_body(routing_key: str, dedup_key: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The Events API v2 trigger (``payload`` holds summary, source, severity, class, component,
    custom_details; the summary is capped at PagerDuty's 1024 characters)."""
    page = dict(payload)
    page["summary"] = str(page.get("summary", ""))[:1024]
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key[:255],
        "payload": page,
    }


def _verdict(response: httpx.Response) -> SendResult:
    code = response.status_code
    if 200 <= code < 300:
        return SendResult(Verdict.DELIVERED, f"HTTP {code}")
    if code == 429 or code >= 500:
        return SendResult(Verdict.RETRY, f"HTTP {code}", _retry_after(response))
    return SendResult(Verdict.GIVE_UP, f"HTTP {code}")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        seconds = float(value)
    except ValueError:
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def _post(client: httpx.Client, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
    try:
        response = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:  # connect/read timeouts, refused, protocol errors
        return SendResult(Verdict.RETRY, exc.__class__.__name__)
    return _verdict(response)


class PagerDutyNotifier:
    """``POST {url}/v2/enqueue`` (``url`` defaults to https://events.pagerduty.com)."""

    def __init__(
        self,
        routing_key: Secret,
        *,
        url: str = "https://events.pagerduty.com",
        timeout_s: float = 5.0,
        client: httpx.Client | None = None,
    ) -> None:
        if not routing_key:
            raise ValueError("a PagerDuty routing key is required")
        self._key = routing_key
        self._url = url.rstrip("/") + "/v2/enqueue"
        self._client = client or httpx.Client(timeout=timeout_s, follow_redirects=False)

    def send(self, dedup_key: str, payload: dict[str, Any]) -> SendResult:
        body = pagerduty_body(self._key.reveal_text(), dedup_key, payload)
        raw = json.dumps(body, separators=(",", ":")).encode()
        return _post(self._client, self._url, raw, {"content-type": "application/json"})

    def close(self) -> None:
        self._client.close()


class WebhookNotifier:
    """``POST {url}`` with ``{"dedup_key", "event_action": "trigger", "payload"}``. With a
    ``signing_key`` the body carries ``x-pipvault-signature: sha256=<HMAC hex>``."""

    def __init__(
        self,
        url: str,
        *,
        signing_key: Secret | None = None,
        timeout_s: float = 5.0,
        client: httpx.Client | None = None,
    ) -> None:
        self._url = url
        self._signing_key = signing_key
        self._client = client or httpx.Client(timeout=timeout_s, follow_redirects=False)

    def send(self, dedup_key: str, payload: dict[str, Any]) -> SendResult:
        doc = {"dedup_key": dedup_key, "event_action": "trigger", "payload": payload}
        raw = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
        headers = {"content-type": "application/json"}
        if self._signing_key:
            mac = hmac.new(self._signing_key.reveal(), raw, hashlib.sha256).hexdigest()
            headers["x-pipvault-signature"] = f"sha256={mac}"
        return _post(self._client, self._url, raw, headers)

    def close(self) -> None:
        self._client.close()
