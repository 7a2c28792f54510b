"""What a command handler gets: parsed arguments, output, and a lazily connected client."""

from __future__ import annotations

import argparse
import os
import pathlib
from collections.abc import Mapping

from pipvault_client import DEFAULT_TIMEOUT, TlsConfig, VaultClient

from vaultctl._errors import UsageError
from vaultctl._output import Output

DEFAULT_ADDR = "127.0.0.1:8201"


class Context:
    """One vaultctl invocation."""

    def __init__(
        self, args: argparse.Namespace, out: Output, env: Mapping[str, str] | None = None
    ) -> None:
        self.args = args
        self.out = out
        self._env = env if env is not None else os.environ
        self._client: VaultClient | None = None

    def setting(self, name: str, env_name: str, default: str | None = None) -> str | None:
        """A global option: the flag, else the environment variable, else the default."""
        value = getattr(self.args, name, None)
        if value is None or value == "":
            value = self._env.get(env_name) or default
        return value

    @property
    def timeout(self) -> float | None:
        value: float | None = getattr(self.args, "timeout", None)
        return value

    def reason(self) -> str:
        """The required ``--reason`` (or PIPVAULT_REASON), checked before anything is sent."""
        reason = (self.setting("reason", "PIPVAULT_REASON") or "").strip()
        if not reason:
            raise UsageError("this command needs a reason: pass --reason or set PIPVAULT_REASON")
        return reason

    def client(self) -> VaultClient:
        """The connected client (created on first use)."""
        if self._client is None:
            self._client = self._connect()
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _token(self) -> str | None:
        token = self.setting("token", "PIPVAULT_TOKEN")
        if token:
            return token.strip()
        token_file = self.setting("token_file", "PIPVAULT_TOKEN_FILE")
        if token_file:
            try:
                return pathlib.Path(token_file).read_text(encoding="utf-8").strip() or None
            except OSError as exc:
                raise UsageError(f"cannot read the token file: {exc.strerror}") from None
        return None

    def _tls(self) -> TlsConfig | None:
        ca = self.setting("tls_ca", "PIPVAULT_TLS_CA")
        cert = self.setting("tls_cert", "PIPVAULT_TLS_CERT")
        key = self.setting("tls_key", "PIPVAULT_TLS_KEY")
        server_name = self.setting("tls_server_name", "PIPVAULT_TLS_SERVER_NAME")
        if not (ca or cert or key or server_name):
            return None
        return TlsConfig(ca_file=ca, cert_file=cert, key_file=key, server_name=server_name)

    def _connect(self) -> VaultClient:
        address = self.setting("addr", "PIPVAULT_ADDR", DEFAULT_ADDR) or DEFAULT_ADDR
        try:
            return VaultClient(
                address,
                token=self._token(),
                tls=self._tls(),
                timeout=self.timeout if self.timeout is not None else DEFAULT_TIMEOUT,
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
