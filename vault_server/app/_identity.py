"""Wiring of identity: the access policy (file or given), the identity sources that read it
(certificate first, then JWT, then static tokens), the TLS files, and their reloads."""

from __future__ import annotations

from vault_server.auth.identity import IdentitySource, StaticTokenSource
from vault_server.auth.jwt_source import JwksError, JwtSource
from vault_server.auth.policy import Policy, PolicyError
from vault_server.auth.policy_store import PolicyStore
from vault_server.auth.spiffe import SpiffeSource
from vault_server.auth.tls import TlsConfigError, TlsFiles
from vault_server.config import ConfigError, Settings


class Identity:
    """The policy store and everything that reads it."""

    def __init__(self, settings: Settings, policy: Policy | None = None) -> None:
        if policy is not None:
            self.policy_store = PolicyStore(policy)
        elif settings.policy_file is None:
            raise ConfigError("policy_file: no access policy configured")
        else:
            try:
                self.policy_store = PolicyStore.load(settings.policy_file)
            except PolicyError as exc:
                raise ConfigError(f"policy_file: {exc}") from exc
        self.sources, self.jwt_source = self._sources(settings)
        self.tls_files = _tls_files(settings)

    def _sources(self, settings: Settings) -> tuple[list[IdentitySource], JwtSource | None]:
        ident = settings.identity
        sources: list[IdentitySource] = []
        if ident.spiffe_trust_domain:
            sources.append(SpiffeSource(self.policy_store, ident.spiffe_trust_domain))
        jwt_source = None
        if ident.jwt_jwks_file is not None and ident.jwt_audience:
            try:
                jwt_source = JwtSource(
                    self.policy_store,
                    ident.jwt_jwks_file,
                    ident.jwt_audience,
                    issuer=ident.jwt_issuer,
                    max_clock_skew_s=ident.jwt_max_clock_skew_s,
                    max_lifetime_s=ident.jwt_max_lifetime_s,
                    jwks_check_interval_s=ident.reload_interval_s,
                )
            except JwksError as exc:
                raise ConfigError(f"identity.jwt_jwks_file: {exc}") from exc
            sources.append(jwt_source)
        sources.append(StaticTokenSource(self.policy_store))
        return sources, jwt_source

    def reload(self) -> None:
        """Policy and JWKS files: apply valid changes, keep the old ones otherwise (logged)."""
        self.policy_store.reload_if_changed()
        if self.jwt_source is not None:
            self.jwt_source.reload_if_changed()


def _tls_files(settings: Settings) -> TlsFiles | None:
    tls = settings.tls
    if tls.cert_file is None or tls.key_file is None or tls.client_ca_file is None:
        return None
    try:
        return TlsFiles(
            tls.cert_file,
            tls.key_file,
            tls.client_ca_file,
            min_check_interval_s=tls.reload_interval_s,
        )
    except TlsConfigError as exc:
        raise ConfigError(f"tls: {exc}") from exc
