"""One typed, validated settings object, from a YAML file plus ``PIPVAULT_*`` environment.

Precedence: explicit overrides (CLI flags) > environment (``PIPVAULT_DATABASE_URL``,
``PIPVAULT_LIMITS__MAX_CONCURRENT_RPCS``; nested keys use ``__``) > the config file > the
command's mode defaults (``pipvault dev``) > built-in defaults. An invalid value, and an unknown
key in any section (file, overrides, or a nested ``PIPVAULT_<SECTION>__<KEY>`` variable), stops
start-up with :class:`ConfigError`, whose message names the setting.
Admin RPCs never change configuration: key providers, sinks and egress URLs are declared here only.
"""

from __future__ import annotations

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
from vault_server.brokers.base import Venue
from vault_server.core.event_loop import EventLoopKind

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

    data_socket: Path | None = None  # Unix socket for the data plane (pod-local)
    data_address: str | None = None  # TCP host:port for the data plane
    admin_address: str | None = "127.0.0.1:8201"
    health_address: str | None = "127.0.0.1:8202"  # plaintext, health service only
    metrics_address: str | None = "127.0.0.1:8203"  # Prometheus /metrics
    socket_mode: int = Field(default=0o660, ge=0, le=0o777)
    # Owner and group of the Unix socket (numeric ids; None keeps the process's own). The pod's
    # app container shares the group, so mode 0660 lets it in and nobody else.
    socket_owner: int | None = Field(default=None, ge=0)
    socket_group: int | None = Field(default=None, ge=0)
    grace_period_s: float = Field(default=10.0, ge=0, le=300)

    _v_data = field_validator("data_address", "admin_address", "health_address")(_check_address)
    _v_metrics = field_validator("metrics_address")(_check_address)


class LimitsSettings(_Section):
    max_message_bytes: int = Field(default=1024 * 1024, ge=4096, le=64 * 1024 * 1024)
    max_deadline_s: float = Field(default=30.0, gt=0, le=3600)
    max_stream_deadline_s: float = Field(default=3600.0, gt=0, le=86400)
    max_concurrent_rpcs: int = Field(default=256, ge=1, le=100_000)
    storage_threads: int = Field(default=8, ge=1, le=256)
    page_size_default: int = Field(default=50, ge=1, le=1000)
    page_size_max: int = Field(default=1000, ge=1, le=10_000)


class TlsSettings(_Section):
    """mTLS for the TCP listeners (data and admin): server certificate chain and key, and the CA
    bundle that issues client certificates. Client certificates are always required. Files are
    re-read on change (no restart); the health port and the Unix socket stay plaintext."""

    cert_file: Path | None = None
    key_file: Path | None = None
    client_ca_file: Path | None = None
    reload_interval_s: float = Field(default=5.0, ge=0, le=3600)

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

    spiffe_trust_domain: str | None = None  # mTLS SPIFFE IDs (needs tls); e.g. prod.example.com
    jwt_jwks_file: Path | None = None  # JWT identities (e.g. Kubernetes service-account tokens)
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_max_clock_skew_s: float = Field(default=60.0, ge=0, le=600)
    jwt_max_lifetime_s: float = Field(default=3600.0, gt=0, le=86_400)
    reload_interval_s: float = Field(default=5.0, ge=0, le=3600)  # policy + JWKS; 0: never
    rate_limit_burst_factor: float = Field(default=2.0, gt=0, le=100)

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

    providers: dict[str, str] = Field(default_factory=dict)
    primary: str = "local"
    wrap_limit: int = Field(default=1 << 30, ge=1, le=(1 << 32) - (1 << 28))
    transit_address: str | None = None
    transit_token_env: str = "VAULT_TOKEN"
    transit_timeout_s: float = Field(default=3.0, gt=0, le=60)
    transit_ca_file: Path | None = None
    # Transit login: a static token (from transit_token_env), AppRole or Kubernetes.
    transit_auth: Literal["token", "approle", "kubernetes"] = "token"
    transit_role_id: str | None = None
    transit_secret_id_env: str = "VAULT_SECRET_ID"
    transit_approle_mount: str = "approle"
    transit_kubernetes_role: str | None = None
    transit_kubernetes_jwt_path: Path | None = None
    transit_kubernetes_mount: str = "kubernetes"
    # AWS KMS: credentials from the standard AWS chain (env, web identity / IRSA, files, roles).
    aws_region: str | None = None
    aws_endpoint_url: str | None = None  # emulators and VPC endpoints
    aws_timeout_s: float = Field(default=3.0, gt=0, le=60)
    aws_max_attempts: int = Field(default=2, ge=1, le=5)
    # PKCS#11: the vendor library, the user PIN from a file or a variable, the session pool.
    pkcs11_module: Path | None = None
    pkcs11_pin_file: Path | None = None
    pkcs11_pin_env: str | None = None
    pkcs11_pool_size: int | None = Field(default=None, ge=1, le=256)  # None: storage_threads
    # Unwrapped-DEK cache. None = automatic: on (1024 entries) when a remote provider (transit,
    # AWS KMS, PKCS#11) is configured, so steady-state signing never calls it; off for local.
    dek_cache_max_entries: int | None = Field(default=None, ge=0, le=100_000)
    dek_cache_max_age_s: float = Field(default=300.0, gt=0)
    dek_cache_max_uses: int = Field(default=10_000, ge=1)


class SigningSettings(_Section):
    recv_window_cap_ms: int = Field(default=5000, ge=100, le=60_000)
    routing_ttl_default_s: float = Field(default=300.0, gt=0)
    routing_ttl_max_s: float = Field(default=3600.0, gt=0, le=86_400)
    version_grace_period_s: float = Field(default=86_400.0, ge=0)
    coinbase_strict: bool = False
    venue_base_urls: dict[str, str] = Field(default_factory=dict)  # venue -> URL override
    # Bounds the whole venue exchange (connect, send, full answer), never beyond the deadline.
    egress_timeout_s: float = Field(default=5.0, gt=0, le=60)
    # Proxied venue requests one workspace may have in flight; one more is CONCURRENCY_LIMITED.
    egress_max_in_flight_per_workspace: int = Field(default=16, ge=1, le=1024)
    # Re-attest every credential's venue permissions this often (0: only on demand/onboarding).
    attestation_interval_s: float = Field(default=0.0, ge=0)

    @field_validator("venue_base_urls")
    @classmethod
    def _known_venues(cls, urls: dict[str, str]) -> dict[str, str]:
        known = {v.value for v in Venue}
        unknown = sorted(set(urls) - known)
        if unknown:
            raise ValueError(
                f"unknown venue {', '.join(unknown)} (known: {', '.join(sorted(known))})"
            )
        return urls


class AuditSettings(_Section):
    """The chain HMAC key derives from the server key; checkpoints of all chain heads are signed
    with an Ed25519 key and exported to a sink outside the database (config only, never RPC)."""

    checkpoint_interval_s: float = Field(default=60.0, gt=0)
    checkpoint_heartbeat_s: float = Field(default=3600.0, gt=0)
    checkpoint_sink: Literal["file", "stdout", "both"] = "file"
    checkpoint_file: Path | None = None  # dev default: <home>/audit-checkpoints.jsonl
    checkpoint_key_file: Path | None = None  # dev default: <home>/audit-checkpoint.key (created)
    stream_poll_interval_s: float = Field(default=0.5, gt=0, le=60)
    failures_before_not_serving: int = Field(default=3, ge=1)
    # Every committed audit event as one JSON line, for a log shipper (a follower of the table).
    event_sink: Literal["none", "stdout", "file"] = "none"
    event_file: Path | None = None  # required with event_sink=file
    event_position_file: Path | None = None  # default: <event_file>.position / <home>/...
    event_sink_interval_s: float = Field(default=1.0, gt=0, le=60)

    @model_validator(mode="after")
    def _event_sink(self) -> AuditSettings:
        if self.event_sink == "file" and self.event_file is None:
            raise ValueError("audit.event_file: required with audit.event_sink=file")
        return self


class PagingSettings(_Section):
    kind: Literal["none", "pagerduty", "webhook"] = "none"
    url: str | None = None
    routing_key_env: str = "PIPVAULT_PAGERDUTY_ROUTING_KEY"
    dedup_bucket_s: int = Field(default=600, ge=1)
    source: str = "pipvault"
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    retry_base_s: float = Field(default=1.0, gt=0)
    retry_cap_s: float = Field(default=300.0, gt=0)
    sender_interval_s: float = Field(default=1.0, gt=0)
    outbox_retention_s: float = Field(default=2_592_000.0, gt=0)
    webhook_signing_key_env: str = "PIPVAULT_WEBHOOK_SIGNING_KEY"


ENV_PREFIX = "PIPVAULT_"
NESTED = "__"


class Settings(BaseSettings):
    """Everything the composition root needs."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=NESTED, extra="forbid", frozen=True
    )

    mode: Literal["dev", "production"] = "production"
    home: Path = Path(".pipvault")
    database_url: str = ""
    policy_file: Path | None = None
    # 32+ random bytes (base64) from which the audit chain and page-token keys are derived.
    # Dev mode creates `<home>/server.key`; production reads this file or $PIPVAULT_SERVER_KEY.
    server_key_file: Path | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    # The event loop the server runs on (core.event_loop): uvloop unless told otherwise.
    event_loop: EventLoopKind = "uvloop"
    trusted_proxies: list[str] = Field(default_factory=list)
    readiness_interval_s: float = Field(default=5.0, gt=0, le=300)
    listen: ListenSettings = Field(default_factory=ListenSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    keys: KeysSettings = Field(default_factory=KeysSettings)
    signing: SigningSettings = Field(default_factory=SigningSettings)
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
