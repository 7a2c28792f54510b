"""One typed, validated settings object, from a YAML file plus ``PIPVAULT_*`` environment.

Precedence: explicit overrides (CLI flags) > environment (``PIPVAULT_DATABASE_URL``,
``PIPVAULT_LIMITS__MAX_CONCURRENT_RPCS``; nested keys use ``__``) > the config file > the
command's mode defaults (``pipvault dev``) > built-in defaults. An invalid value, and an unknown
key in any section (file, overrides, or a nested ``PIPVAULT_<SECTION>__<KEY>`` variable), stops
start-up with :class:`ConfigError`, whose message names the setting.
Admin RPCs never change configuration: key providers, sinks and egress URLs are declared here only.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from vault_server.auth.spiffe import check_trust_domain
from vault_server.brokers.base import Venue, parse_venue
from vault_server.core.errors import InvalidArgument
from vault_server.core.event_loop import EventLoopKind
from vault_server.crypto.providers import endpoint_url

_ADDRESS = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]+):\d{1,5}$")


class ConfigError(Exception):
    """Configuration is invalid; the message names each bad setting."""


class _Section(BaseModel):
    """A nested settings section: an unknown key is an error naming it, never silently ignored."""

    model_config = ConfigDict(extra="forbid")


def _check_address(value: str | None) -> str | None:
    if value is not None and not _ADDRESS.match(value):
        raise ValueError("must be host:port (IPv6 in brackets)")
    return value


class ListenSettings(_Section):
    """Where the vault listens. Plaintext TCP is allowed on loopback only (§8)."""

    data_socket: Path | None = Field(
        default=None,
        description="Unix socket for the data plane, pod-local (mode `listen.socket_mode`)",
    )
    data_address: str | None = Field(
        default=None, description="TCP `host:port` for the data plane; plaintext only on loopback"
    )
    admin_address: str | None = Field(
        default="127.0.0.1:8201",
        description=(
            "admin plane (server reflection lists only the admin services, not SigningService); "
            "plaintext only on loopback"
        ),
    )
    health_address: str | None = Field(
        default="127.0.0.1:8202", description="plaintext `grpc.health.v1` only, for kubelet probes"
    )
    metrics_address: str | None = Field(
        default="127.0.0.1:8203", description="Prometheus `/metrics` over HTTP; null turns it off"
    )
    socket_mode: int = Field(
        default=0o660,
        ge=0,
        le=0o777,
        description="file mode of the Unix socket (0660: owner and group)",
    )
    # Owner and group of the Unix socket (numeric ids; None keeps the process's own). The pod's
    # app container shares the group, so mode 0660 lets it in and nobody else.
    socket_owner: int | None = Field(
        default=None, ge=0, description="numeric owner of the Unix socket (none: the process's own)"
    )
    socket_group: int | None = Field(
        default=None,
        ge=0,
        description=(
            "numeric group of the Unix socket (none: the process's own); the app container shares "
            "it"
        ),
    )
    grace_period_s: float = Field(
        default=10.0, ge=0, le=300, description="drain time on SIGTERM/SIGINT"
    )

    _v_data = field_validator("data_address", "admin_address", "health_address")(_check_address)
    _v_metrics = field_validator("metrics_address")(_check_address)


class LimitsSettings(_Section):
    max_message_bytes: int = Field(
        default=1024 * 1024,
        ge=4096,
        le=64 * 1024 * 1024,
        description="larger requests are refused (RESOURCE_EXHAUSTED); default 1 MiB",
    )
    max_deadline_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="unary calls must carry a deadline; longer ones are capped to this",
    )
    max_stream_deadline_s: float = Field(
        default=3600.0,
        gt=0,
        le=86400,
        description=(
            "the cap for streaming calls (audit streams, key migration); clients reopen a stream "
            "after it"
        ),
    )
    max_concurrent_rpcs: int = Field(
        default=256,
        ge=1,
        le=100_000,
        description="beyond it: RESOURCE_EXHAUSTED `CONCURRENCY_LIMITED`",
    )
    storage_threads: int = Field(
        default=8,
        ge=1,
        le=256,
        description="thread pool (and database pool) for blocking I/O off the event loop",
    )
    page_size_default: int = Field(
        default=50, ge=1, le=1000, description="list page size when a request asks for 0"
    )
    page_size_max: int = Field(
        default=1000,
        ge=1,
        le=10_000,
        description="list page size cap; larger requests are cut to it",
    )


class TlsSettings(_Section):
    """mTLS for the TCP listeners (data and admin): server certificate chain and key, and the CA
    bundle that issues client certificates. Client certificates are always required. Files are
    re-read on change (no restart); the health port and the Unix socket stay plaintext."""

    cert_file: Path | None = Field(
        default=None,
        description=(
            "server certificate chain (PEM) for the TCP data and admin listeners; set with "
            "`key_file` and `client_ca_file`"
        ),
    )
    key_file: Path | None = Field(default=None, description="server private key (PEM)")
    client_ca_file: Path | None = Field(
        default=None,
        description="CA bundle that issues client certificates (always required: mTLS)",
    )
    reload_interval_s: float = Field(
        default=5.0,
        ge=0,
        le=3600,
        description="how often the three files are re-read (no restart); 0: never",
    )

    @model_validator(mode="after")
    def _together(self) -> TlsSettings:
        given = [self.cert_file, self.key_file, self.client_ca_file]
        if any(given) and not all(given):
            raise ValueError("cert_file, key_file and client_ca_file are set together")
        return self

    @property
    def enabled(self) -> bool:
        return self.cert_file is not None


class IdentitySettings(_Section):
    """Identity sources beside static tokens, policy reload and per-principal rate limits."""

    spiffe_trust_domain: str | None = Field(
        default=None,
        description=(
            "principals from the client certificate's single SPIFFE URI SAN (needs `tls`), e.g. "
            "`prod.example.com`"
        ),
    )
    jwt_jwks_file: Path | None = Field(
        default=None,
        description=(
            "principals from JWTs (e.g. Kubernetes projected service-account tokens) verified with "
            "this JWKS"
        ),
    )
    jwt_audience: str | None = Field(
        default=None, description="required `aud` of JWTs (required with `jwt_jwks_file`)"
    )
    jwt_issuer: str | None = Field(
        default=None, description="required `iss` of JWTs (none: not checked)"
    )
    jwt_max_clock_skew_s: float = Field(
        default=60.0, ge=0, le=600, description="clock skew allowed on `exp`/`nbf`/`iat`"
    )
    jwt_max_lifetime_s: float = Field(
        default=3600.0, gt=0, le=86_400, description="JWTs valid for longer than this are refused"
    )
    reload_interval_s: float = Field(
        default=5.0, ge=0, le=3600, description="policy file and JWKS reload period; 0: never"
    )
    rate_limit_burst_factor: float = Field(
        default=2.0,
        gt=0,
        le=100,
        description="per-principal rate limits: bucket size as a multiple of the rate",
    )

    @field_validator("spiffe_trust_domain")
    @classmethod
    def _trust_domain(cls, v: str | None) -> str | None:
        return None if v is None else check_trust_domain(v)

    @model_validator(mode="after")
    def _jwt(self) -> IdentitySettings:
        if self.jwt_jwks_file is not None and not self.jwt_audience:
            raise ValueError("jwt_audience: required with jwt_jwks_file")
        return self


class KeysSettings(_Section):
    """Key providers by id -> URI (``local:///path``, ``local+env://VAR``,
    ``vault-transit://mount/keys/name``, ``aws-kms://key``, ``pkcs11://token/key``) and which one
    wraps new data keys. Connection settings per kind below; secrets only by file or variable."""

    providers: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "KEK providers by id → URI: `local:///abs/keyring.json` (0600 file), `local+env://VAR` "
            "(read-only), `vault-transit://<mount>/keys/<name>` (HashiCorp Vault / OpenBao "
            "transit; a **derived** `aes256-gcm96` key), `aws-kms://<key id, alias/name or ARN>` "
            "(AWS KMS symmetric key), `pkcs11://<token label>/<key label>` (AES-256 KEK in a "
            "PKCS#11 token); see [Key providers](#key-providers); dev: the `local` keyring "
            "`<home>/keyring.json`"
        ),
    )
    primary: str = Field(
        default="local",
        description=(
            "the provider id that wraps new data keys (the others still unwrap what they wrapped)"
        ),
    )
    wrap_limit: int = Field(
        default=1 << 30,
        ge=1,
        le=(1 << 32) - (1 << 28),
        description=(
            "data keys wrapped per KEK version before automatic rotation (default 2^30, far below "
            "the 2^32 GCM bound)"
        ),
    )
    transit_address: str | None = Field(
        default=None, description="transit server URL; `http://` only on loopback"
    )
    transit_token_env: str = Field(
        default="VAULT_TOKEN",
        description="`transit_auth: token`: the variable that holds the token",
    )
    transit_timeout_s: float = Field(
        default=3.0, gt=0, le=60, description="timeout per transit call"
    )
    transit_ca_file: Path | None = Field(
        default=None, description="CA bundle for the transit server's certificate"
    )
    # Transit login: a static token (from transit_token_env), AppRole or Kubernetes.
    transit_auth: Literal["token", "approle", "kubernetes"] = Field(
        default="token",
        description=(
            "transit login; tokens are renewed at half their TTL and logged in again when they "
            "expire"
        ),
    )
    transit_role_id: str | None = Field(
        default=None, description="`transit_auth: approle`: the role id"
    )
    transit_secret_id_env: str = Field(
        default="VAULT_SECRET_ID",
        description="`transit_auth: approle`: the variable that holds the secret id",
    )
    transit_approle_mount: str = Field(
        default="approle", description="`transit_auth: approle`: the auth mount"
    )
    transit_kubernetes_role: str | None = Field(
        default=None, description="`transit_auth: kubernetes`: the role"
    )
    transit_kubernetes_jwt_path: Path | None = Field(
        default=None,
        description=(
            "`transit_auth: kubernetes`: the projected token (none: the service-account token path)"
        ),
    )
    transit_kubernetes_mount: str = Field(
        default="kubernetes", description="`transit_auth: kubernetes`: the auth mount"
    )
    # AWS KMS: credentials from the standard AWS chain (env, web identity / IRSA, files, roles).
    aws_region: str | None = Field(
        default=None,
        description=(
            "AWS KMS region (none: from a key ARN, else the AWS config); credentials always come "
            "from the standard AWS chain"
        ),
    )
    aws_endpoint_url: str | None = Field(
        default=None,
        description=(
            "AWS KMS endpoint override for emulators and VPC endpoints (`http://` only on loopback)"
        ),
    )
    aws_timeout_s: float = Field(
        default=3.0, gt=0, le=60, description="AWS KMS connect and read timeout per call"
    )
    aws_max_attempts: int = Field(default=2, ge=1, le=5, description="AWS KMS attempts per call")
    # PKCS#11: the vendor library, the user PIN from a file or a variable, the session pool.
    pkcs11_module: Path | None = Field(
        default=None, description="PKCS#11: the vendor library (absolute path)"
    )
    pkcs11_pin_file: Path | None = Field(
        default=None,
        description=(
            "PKCS#11: the user PIN from this file (first line); exactly one of the file and the "
            "variable"
        ),
    )
    pkcs11_pin_env: str | None = Field(
        default=None, description="PKCS#11: the user PIN from this environment variable"
    )
    pkcs11_pool_size: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="PKCS#11 sessions kept open and logged in (none: `limits.storage_threads`)",
    )
    # Unwrapped-DEK cache. None = automatic: on (1024 entries) when a remote provider (transit,
    # AWS KMS, PKCS#11) is configured, so steady-state signing never calls it; off for local.
    dek_cache_max_entries: int | None = Field(
        default=None,
        ge=0,
        le=100_000,
        description=(
            "unwrapped-DEK cache; none = automatic: on (1024) with a transit, AWS KMS or PKCS#11 "
            "provider so steady-state signing never calls the KMS, off for local keyrings; flushed "
            "on KEK rotation, revocation, freeze, shutdown"
        ),
    )
    dek_cache_max_age_s: float = Field(
        default=300.0,
        gt=0,
        description="an unwrapped DEK is dropped from the cache after this long",
    )
    dek_cache_max_uses: int = Field(
        default=10_000,
        ge=1,
        description="an unwrapped DEK is dropped from the cache after this many uses",
    )


class SigningSettings(_Section):
    max_batch_items: int = Field(
        default=1000,
        ge=1,
        le=10_000,
        description=(
            "most orders in one `BatchSignOrders` call (more: INVALID_ARGUMENT); each item's "
            "request and signed answer must also fit `limits.max_message_bytes` and 4 MiB"
        ),
    )
    recv_window_cap_ms: int = Field(
        default=5000,
        ge=100,
        le=60_000,
        description="cap on venue freshness windows (Binance `recvWindow`, Bybit)",
    )
    routing_ttl_default_s: float = Field(
        default=300.0, gt=0, description="routing-context lifetime when the request names none"
    )
    routing_ttl_max_s: float = Field(
        default=3600.0, gt=0, le=86_400, description="longest routing-context lifetime"
    )
    version_grace_period_s: float = Field(
        default=86_400.0,
        ge=0,
        description=(
            "how long a PREVIOUS credential version stays usable before its ciphertext is destroyed"
        ),
    )
    coinbase_strict: bool = Field(
        default=False, description="Coinbase proxy-only (its JWT does not bind the order body)"
    )
    venue_base_urls: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "per-venue base-URL override (the egress allow-list), venue name → URL; keys are venue "
            "names in any accepted spelling (`binance_spot`, `binance-spot`, "
            "`BROKER_BINANCE_SPOT`, `binance`); config only, never by RPC"
        ),
    )
    egress_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description=(
            "bound on the whole venue exchange of the vault's own calls (proxy-mode orders, "
            "permission attestation): connect, send and the full answer, never beyond the "
            "caller's deadline"
        ),
    )
    egress_max_in_flight_per_workspace: int = Field(
        default=16,
        ge=1,
        le=1024,
        description=(
            "proxied venue requests one workspace may have in flight; one more is refused "
            "`CONCURRENCY_LIMITED` before its use is recorded"
        ),
    )
    # Re-attest every credential's venue permissions this often (0: only on demand/onboarding).
    attestation_interval_s: float = Field(
        default=0.0,
        ge=0,
        description=(
            "re-ask every venue with a permission API what each key can do (0: only on demand and "
            "at onboarding); a key that can withdraw or transfer is quarantined (each run is an "
            "audited, paged read)"
        ),
    )

    @field_validator("venue_base_urls", mode="before")
    @classmethod
    def _canonical_venues(cls, urls: object) -> object:
        """Venue keys in any accepted spelling (``binance-spot``, ``BROKER_BINANCE_SPOT``,
        ``binance``) become the canonical name; unknown keys are left for ``_known_venues``."""
        if not isinstance(urls, Mapping):
            return urls
        out: dict[object, object] = {}
        for key, url in urls.items():
            name = key
            with contextlib.suppress(ValueError, AttributeError):
                name = parse_venue(key).value
            if name in out and out[name] != url:
                raise ValueError(f"venue {name} is given twice ({key!r} is another spelling)")
            out[name] = url
        return out

    @field_validator("venue_base_urls")
    @classmethod
    def _known_venues(cls, urls: dict[str, str]) -> dict[str, str]:
        known = {v.value for v in Venue}
        unknown = sorted(set(urls) - known)
        if unknown:
            raise ValueError(
                f"unknown venue {', '.join(unknown)} (known: {', '.join(sorted(known))})"
            )
        # Bearer tokens (OANDA, Alpaca) and signed requests go to these URLs: https://, or
        # http:// on loopback only (test stubs), as every other outbound endpoint.
        for venue, url in urls.items():
            try:
                endpoint_url(venue, url, f"for {venue}", allow_path=True)
            except InvalidArgument as err:
                raise ValueError(err.message) from None
        return urls


class SessionsSettings(_Section):
    """Venue sessions and OAuth grants of forex/CFD platforms (``vault_server/sessions``)."""

    lease_s: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description=(
            "how long one replica may hold a credential's renewal lease (login or refresh); "
            "also the loss window of a rotated refresh token whose write-back never happened"
        ),
    )
    max_failed_logins: int = Field(
        default=3,
        ge=1,
        le=20,
        description="refused logins in a row after which the credential is LOCKED_OUT (paged)",
    )
    login_backoff_base_s: float = Field(
        default=1.0, gt=0, description="wait after the first refused login (doubles per failure)"
    )
    login_backoff_max_s: float = Field(
        default=300.0, gt=0, description="longest wait between refused logins"
    )
    unavailable_backoff_s: float = Field(
        default=2.0,
        ge=0,
        description="after a venue could not be reached for a login, orders fail fast this long",
    )


class AuditSettings(_Section):
    """The chain HMAC key derives from the server key; checkpoints of all chain heads are signed
    with an Ed25519 key and exported to a sink outside the database (config only, never RPC)."""

    checkpoint_interval_s: float = Field(
        default=60.0,
        gt=0,
        description="checkpoint period (skipped while no chain head moved, up to the heartbeat)",
    )
    checkpoint_heartbeat_s: float = Field(
        default=3600.0,
        gt=0,
        description="a checkpoint at least this often, even when nothing moved",
    )
    checkpoint_sink: Literal["file", "stdout", "both"] = Field(
        default="file", description="where signed checkpoints go, outside the database"
    )
    checkpoint_file: Path | None = Field(
        default=None,
        description=(
            "the checkpoints file (required in production unless `checkpoint_sink: stdout`); dev: "
            "`<home>/audit-checkpoints.jsonl`"
        ),
    )
    checkpoint_key_file: Path | None = Field(
        default=None,
        description=(
            "Ed25519 key that signs checkpoints of every chain head (`pipvault keys init-audit`; "
            "required in production); dev: `<home>/audit-checkpoint.key` (created)"
        ),
    )
    stream_poll_interval_s: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description=(
            "how often a following audit stream (`vaultctl audit tail --follow`) looks for new "
            "events"
        ),
    )
    failures_before_not_serving: int = Field(
        default=3,
        ge=1,
        description=(
            "audit writes that did not become durable this many times in a row turn readiness "
            "NOT_SERVING at once (counted at commit)"
        ),
    )
    verify_interval_s: float = Field(
        default=3600.0,
        ge=0,
        description=(
            "verify every chain (and the latest checkpoint) this often and page a break (0: never; "
            "`VerifyAuditLog` and `pipvault audit verify` page too)"
        ),
    )
    # Every committed audit event as one JSON line, for a log shipper (a follower of the table).
    event_sink: Literal["none", "stdout", "file"] = Field(
        default="none",
        description=(
            "every committed audit event as one JSON line, for a log shipper (see [Audit to a "
            "SIEM](#audit-to-a-siem))"
        ),
    )
    event_file: Path | None = Field(
        default=None, description="the sink's file (0600; required with `event_sink: file`)"
    )
    event_position_file: Path | None = Field(
        default=None,
        description=(
            "where the sink remembers how far it got (required with `stdout` in production); none: "
            "`<event_file>.position`, dev `<home>/audit-events.position`"
        ),
    )
    event_sink_interval_s: float = Field(
        default=1.0, gt=0, le=60, description="how often the sink picks up newly committed events"
    )

    @model_validator(mode="after")
    def _event_sink(self) -> AuditSettings:
        if self.event_sink == "file" and self.event_file is None:
            raise ValueError("audit.event_file: required with audit.event_sink=file")
        return self


class PagingSettings(_Section):
    kind: Literal["none", "pagerduty", "webhook"] = Field(
        default="none",
        description=(
            "`pagerduty` (Events API v2) or `webhook` (JSON POST, optionally signed: see [Signed "
            "webhooks](#signed-webhooks)); pages queue in the outbox either way"
        ),
    )
    url: str | None = Field(
        default=None,
        description=(
            "webhook URL (required with `webhook`); PagerDuty: the Events API base (none: "
            "`https://events.pagerduty.com`)"
        ),
    )
    routing_key_env: str = Field(
        default="PIPVAULT_PAGERDUTY_ROUTING_KEY",
        description=(
            "`pagerduty`: the variable that holds the routing key (never in the config or the "
            "database)"
        ),
    )
    dedup_bucket_s: int = Field(
        default=600, ge=1, description="one page per credential and bucket of this many seconds"
    )
    source: str = Field(default="pipvault", description="the page's `source` field")
    timeout_s: float = Field(
        default=5.0, gt=0, le=60, description="timeout of one page delivery (connect and read)"
    )
    retry_base_s: float = Field(
        default=1.0,
        gt=0,
        description="first retry delay of a page that could not be delivered (doubles per attempt)",
    )
    retry_cap_s: float = Field(default=300.0, gt=0, description="longest retry delay")
    sender_interval_s: float = Field(
        default=1.0, gt=0, description="how often the outbox is scanned for pages to send"
    )
    outbox_retention_s: float = Field(
        default=2_592_000.0,
        gt=0,
        description=(
            "delivered and given-up pages are deleted from the outbox after this long (default 30 "
            "days; the audit log stays the record)"
        ),
    )
    webhook_signing_key_env: str = Field(
        default="PIPVAULT_WEBHOOK_SIGNING_KEY",
        description=(
            "`webhook`: the variable that holds the HMAC key that signs each webhook body (unset: "
            "unsigned); see [Signed webhooks](#signed-webhooks)"
        ),
    )


ENV_PREFIX = "PIPVAULT_"
NESTED = "__"


class Settings(BaseSettings):
    """Everything the composition root needs."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=NESTED, extra="forbid", frozen=True
    )

    mode: Literal["dev", "production"] = Field(
        default="production",
        description=(
            "`dev` migrates the schema automatically and generates keys, policy and tokens under "
            "`home`; `production` requires every file and provider below to be configured"
        ),
    )
    home: Path = Field(
        default=Path(".pipvault"),
        description=(
            "dev-mode state folder (0700): SQLite database, keyring, server key, dev tokens"
        ),
    )
    database_url: str = Field(
        default="",
        description=(
            "`sqlite:///…` or `postgresql://…` (psycopg 3); empty: dev uses "
            "`sqlite:///<home>/vault.db`, production refuses to start"
        ),
    )
    policy_file: Path | None = Field(
        default=None,
        description=(
            "access policy (principals → roles, workspaces, token hashes); dev generates one under "
            "`home`"
        ),
    )
    # 32+ random bytes (base64) from which the audit chain and page-token keys are derived.
    # Dev mode creates `<home>/server.key`; production reads this file or $PIPVAULT_SERVER_KEY.
    server_key_file: Path | None = Field(
        default=None,
        description=(
            "base64, ≥32 bytes; the audit-chain and page-token keys derive from it (or "
            "`$PIPVAULT_SERVER_KEY`); dev: `<home>/server.key` (created)"
        ),
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="log threshold"
    )
    log_format: Literal["json", "console"] = Field(
        default="json",
        description="structured logs; secret fields are dropped by the pipeline",
    )
    # The event loop the server runs on (core.event_loop): uvloop unless told otherwise.
    event_loop: EventLoopKind = Field(
        default="uvloop",
        description=(
            "the server's event loop: `uvloop` (C; about 28 % more signatures per second at 32 "
            "callers, see [Performance](#performance)) or `asyncio` (the standard library's); the "
            "`vault.serving` log line names the loop in use"
        ),
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description=(
            "networks (CIDR) whose `x-forwarded-for` names the audited peer; from anyone else the "
            "header is ignored"
        ),
    )
    readiness_interval_s: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description=(
            "how often readiness is re-checked (see [Probes and readiness](#probes-and-readiness))"
        ),
    )
    listen: ListenSettings = Field(default_factory=ListenSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    keys: KeysSettings = Field(default_factory=KeysSettings)
    signing: SigningSettings = Field(default_factory=SigningSettings)
    sessions: SessionsSettings = Field(default_factory=SessionsSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    paging: PagingSettings = Field(default_factory=PagingSettings)
    tls: TlsSettings = Field(default_factory=TlsSettings)
    identity: IdentitySettings = Field(default_factory=IdentitySettings)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        listen = self.listen
        if listen.data_socket is None and listen.data_address is None and not listen.admin_address:
            raise ValueError("listen: configure at least one data or admin listener")
        if self.keys.providers and self.keys.primary not in self.keys.providers:
            raise ValueError(f"keys.primary: '{self.keys.primary}' is not in keys.providers")
        if self.mode == "production":
            if not self.database_url:
                raise ValueError("database_url: required in production mode")
            if not self.keys.providers:
                raise ValueError("keys.providers: required in production mode")
            if self.policy_file is None:
                raise ValueError("policy_file: required in production mode")
            if self.audit.checkpoint_key_file is None:
                raise ValueError("audit.checkpoint_key_file: required in production mode")
            if self.audit.checkpoint_sink != "stdout" and self.audit.checkpoint_file is None:
                raise ValueError("audit.checkpoint_file: required in production mode")
            audit = self.audit
            if audit.event_sink == "stdout" and audit.event_position_file is None:
                raise ValueError("audit.event_position_file: required with audit.event_sink=stdout")
        if self.paging.kind != "none" and not self.paging.url and self.paging.kind == "webhook":
            raise ValueError("paging.url: required for a webhook pager")
        if self.identity.spiffe_trust_domain and not self.tls.enabled:
            raise ValueError(
                "identity.spiffe_trust_domain: needs tls.cert_file/key_file/client_ca_file"
            )
        if not self.tls.enabled:
            self._check_plaintext("listen.data_address", listen.data_address)
            self._check_plaintext("listen.admin_address", listen.admin_address)
        return self

    @staticmethod
    def _check_plaintext(setting: str, address: str | None) -> None:
        """Credentials enter only over TLS or the pod-local socket: plaintext TCP is loopback-only
        until the TLS listener settings (identity issue) are configured."""
        if address is None:
            return
        host = address.rsplit(":", 1)[0].strip("[]")
        if host == "localhost":
            return
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(f"{setting}: plaintext TCP is allowed on loopback addresses only")

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'vault.db').resolve()}"

    def resolved_key_providers(self) -> dict[str, str]:
        if self.keys.providers:
            return dict(self.keys.providers)
        return {"local": f"local://{(self.home / 'keyring.json').resolve()}"}


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_settings(
    config_file: Path | None = None,
    *,
    defaults: dict[str, Any] | None = None,
    **overrides: Any,
) -> Settings:
    """Read the file, apply environment and overrides, validate.

    Args:
        config_file: YAML settings file (optional).
        defaults: the command's mode defaults (``pipvault dev``), below the file and environment.
        overrides: explicit values (CLI flags); a top-level ``None`` means "not given".

    Raises:
        ConfigError: the file is unreadable, a key is unknown or a value is invalid (each
            setting is named).
    """
    file_values: dict[str, Any] = {}
    if config_file is not None:
        try:
            loaded = yaml.safe_load(config_file.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"config file {config_file}: {exc.__class__.__name__}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {config_file}: top level must be a mapping")
        file_values = loaded
    _check_nested_env(os.environ)
    try:
        explicit = _drop_none(overrides)
        below_env = _deep_merge(_deep_merge(defaults or {}, file_values), explicit)
        from_env_and_file = _with_env(below_env).model_dump()
        return Settings.model_validate(_deep_merge(from_env_and_file, explicit))
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    """Top-level flags not given are None: they must not override the environment or the file.
    (Inside a section, None is a value: ``listen.metrics_address: None`` turns metrics off.)"""
    return {k: v for k, v in values.items() if v is not None}


def _check_nested_env(environ: Mapping[str, str]) -> None:
    """``PIPVAULT_<SECTION>__<KEY>`` must name a real setting (a typo would otherwise be ignored).

    Plain ``PIPVAULT_<NAME>`` variables are not checked: that namespace is shared with the
    client's (``PIPVAULT_ADDR``, ``PIPVAULT_TOKEN``) and with secrets read by name
    (``PIPVAULT_SERVER_KEY``, ``PIPVAULT_PAGERDUTY_ROUTING_KEY``)."""
    bad = []
    for name in environ:
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or NESTED not in upper:
            continue
        section, _, key = upper.removeprefix(ENV_PREFIX).lower().partition(NESTED)
        model = Settings.model_fields.get(section)
        annotation = model.annotation if model is not None else None
        fields = getattr(annotation, "model_fields", None)
        if fields is None or key not in fields:
            bad.append(name)
    if bad:
        raise ConfigError(
            "invalid configuration: "
            + "; ".join(f"{n}: not a setting (environment variable)" for n in sorted(bad))
        )


def _with_env(values: dict[str, Any]) -> Settings:
    class _FileDefaults(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (env_settings, init_settings)

    return _FileDefaults(**values)


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "settings"
        msg = "unknown setting" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"{loc}: {msg}")
    return "invalid configuration: " + "; ".join(lines)
