"""Authentication of the transit provider: static token, AppRole or Kubernetes, with renewal.

``TransitLogin.ensure()`` runs before every transit call. It logs in when there is no token,
renews a renewable token once half its TTL has passed (by the injected monotonic clock), and
falls back to a fresh login when renewal fails (AppRole/Kubernetes only: a static token that can
no longer be renewed is an operator problem). hvac exceptions pass through; the provider maps
them to ``KeyProviderUnavailable``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from vault_server.core.clock import Clock
from vault_server.core.errors import KeyProviderUnavailable
from vault_server.core.secret import Secret

DEFAULT_JWT_PATH: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
MAX_JWT_BYTES: Final = 64 * 1024
RENEW_FRACTION: Final = 0.5

Method = Literal["token", "approle", "kubernetes"]


@dataclass(frozen=True)
class TransitAuth:
    """How to authenticate (validated by ``new_key_provider``); secrets stay in ``Secret``."""

    method: Method
    token: Secret | None = None
    role_id: str = ""
    secret_id: Secret | None = None
    approle_mount: str = "approle"
    kubernetes_role: str = ""
    kubernetes_jwt_path: Path = DEFAULT_JWT_PATH
    kubernetes_mount: str = "kubernetes"

    def __repr__(self) -> str:
        detail = {
            "token": "",
            "approle": f", role_id={self.role_id!r}, mount={self.approle_mount!r}",
            "kubernetes": (
                f", role={self.kubernetes_role!r}, jwt_path='{self.kubernetes_jwt_path}', "
                f"mount={self.kubernetes_mount!r}"
            ),
        }[self.method]
        return f"TransitAuth(method={self.method!r}{detail})"


class TransitLogin:
    """Keeps ``client`` holding a valid token (see module docstring)."""

    def __init__(self, client: Any, auth: TransitAuth, clock: Clock) -> None:
        self._client = client
        self._auth = auth
        self._clock = clock
        self._lock = threading.Lock()
        self._ready = False
        self._renew_at: float | None = None

    @property
    def can_relogin(self) -> bool:
        return self._auth.method != "token"

    def invalidate(self) -> None:
        """Forget the token (after a 403), so the next ``ensure`` logs in again."""
        with self._lock:
            self._ready = False

    def ensure(self) -> None:
        with self._lock:
            if not self._ready:
                self._login()
            elif self._renew_at is not None and self._clock.monotonic() >= self._renew_at:
                try:
                    self._schedule(self._client.auth.token.renew_self()["auth"])
                except Exception:
                    if not self.can_relogin:
                        raise
                    self._login()

    def _login(self) -> None:
        auth = self._auth
        if auth.method == "token":
            assert auth.token is not None
            self._client.token = auth.token.reveal_text()
            data = self._client.auth.token.lookup_self()["data"]
            self._schedule({"renewable": data.get("renewable"), "lease_duration": data.get("ttl")})
        elif auth.method == "approle":
            assert auth.secret_id is not None
            response = self._client.auth.approle.login(
                role_id=auth.role_id,
                secret_id=auth.secret_id.reveal_text(),
                mount_point=auth.approle_mount,
                use_token=True,
            )
            self._schedule(response["auth"])
        else:
            response = self._client.auth.kubernetes.login(
                role=auth.kubernetes_role,
                jwt=_read_jwt(auth.kubernetes_jwt_path).reveal_text(),
                mount_point=auth.kubernetes_mount,
                use_token=True,
            )
            self._schedule(response["auth"])
        self._ready = True

    def _schedule(self, auth: Any) -> None:
        """Plan the next renewal from a login/renew/lookup answer (no TTL: never)."""
        ttl = auth.get("lease_duration") if isinstance(auth, dict) else None
        renewable = isinstance(auth, dict) and bool(auth.get("renewable"))
        if renewable and isinstance(ttl, int) and ttl > 0:
            self._renew_at = self._clock.monotonic() + ttl * RENEW_FRACTION
        else:
            self._renew_at = None


def _read_jwt(path: Path) -> Secret:
    """Read the projected service-account token (re-read at each login: kubelet rotates it)."""
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_JWT_BYTES + 1).strip()
    except OSError as exc:
        raise KeyProviderUnavailable(
            f"vault-transit kubernetes_jwt_path {path}: cannot be read ({exc.strerror or 'error'})"
        ) from None
    if not data or len(data) > MAX_JWT_BYTES:
        raise KeyProviderUnavailable(f"vault-transit kubernetes_jwt_path {path}: not a JWT")
    return Secret(data)
