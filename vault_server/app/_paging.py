"""Wiring of paging: the notifier ``paging`` configures and the sender that drains the outbox."""

from __future__ import annotations

import os

from vault_server.alerts.notifiers import Notifier, PagerDutyNotifier, WebhookNotifier
from vault_server.alerts.pager_sender import Backoff, PagerSender
from vault_server.config import ConfigError, Settings
from vault_server.core.clock import Random
from vault_server.core.secret import Secret
from vault_server.observability.metrics import Metrics
from vault_server.paging import SqlOutbox


def build_pager_sender(
    settings: Settings, outbox: SqlOutbox, random: Random, metrics: Metrics
) -> PagerSender | None:
    """None when paging is off (pages still queue in the outbox)."""
    notifier = build_notifier(settings)
    if notifier is None:
        return None
    backoff = Backoff(settings.paging.retry_base_s, settings.paging.retry_cap_s)
    return PagerSender(outbox, notifier, random, backoff=backoff, metrics=metrics)


def build_notifier(settings: Settings) -> Notifier | None:
    """The pager configured in ``paging`` (None: paging off; pages still queue in the outbox)."""
    paging = settings.paging
    if paging.kind == "pagerduty":
        key = os.environ.get(paging.routing_key_env)
        if not key:
            raise ConfigError(f"paging.routing_key_env: ${paging.routing_key_env} is not set")
        url = paging.url or "https://events.pagerduty.com"
        return PagerDutyNotifier(Secret(key), url=url, timeout_s=paging.timeout_s)
    if paging.kind == "webhook":
        assert paging.url is not None  # validated in config
        signing = os.environ.get(paging.webhook_signing_key_env)
        return WebhookNotifier(
            paging.url,
            signing_key=Secret(signing) if signing else None,
            timeout_s=paging.timeout_s,
        )
    return None
