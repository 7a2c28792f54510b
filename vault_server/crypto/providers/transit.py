"""The ``vault-transit`` key provider: DEKs wrapped by HashiCorp Vault / OpenBao transit.

The KEK never leaves the KMS. ``wrap``/``unwrap``/``rewrap`` are transit ``encrypt``/``decrypt``/
``rewrap``; the KEK version is the ``N`` of the ``vault:vN:`` ciphertext prefix.

**How the wrap AAD is bound.** Transit accepts ``associated_data`` on ``encrypt``/``decrypt`` for
``aes256-gcm96`` keys, but ``rewrap`` does not take it (checked against OpenBao 2.7: a rewrap of
an AAD-bound ciphertext fails authentication, single or batch), so AAD-bound DEKs could only be
rewrapped by decrypting them here. Instead the transit key must be created with
``derived=true`` and the wrap AAD is sent as the key-derivation ``context``: transit derives a
distinct key per context (HKDF-SHA256), ``rewrap`` accepts ``context``, and a wrapped DEK
presented with another context fails authentication exactly as with AAD. The key is checked
(``aes256-gcm96``, derived, not convergent) before first use.

Errors: an ``InvalidRequest`` from ``decrypt``/``rewrap`` (bad ciphertext, wrong context, version
below ``min_decryption_version``) is ``IntegrityCheckFailed``; every other hvac or HTTP failure,
including timeouts (each HTTP call bounded by ``timeout``), is ``KeyProviderUnavailable`` with a
generic message and a ``cause`` metadata value. Messages never carry library text.

Least-privilege policy for key ``<m>/keys/<k>``: ``update`` on ``<m>/encrypt/<k>``,
``<m>/decrypt/<k>``, ``<m>/rewrap/<k>``; ``read`` on ``<m>/keys/<k>``; ``update`` on
``<m>/keys/<k>/rotate`` (rotation) and ``<m>/keys/<k>/config`` (retirement). The HTTP session
ignores proxy/CA environment variables and never follows redirects (the token header would go
along).
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections.abc import Callable
from typing import Any, Final

from vault_server.core.clock import Clock
from vault_server.core.errors import (
    IntegrityCheckFailed,
    InvalidArgument,
    KeyProviderUnavailable,
)
from vault_server.core.secret import Secret
from vault_server.crypto.providers._transit_auth import TransitAuth, TransitLogin
from vault_server.crypto.providers._transit_support import (
    CIPHERTEXT_RE,
    as_int,
    b64,
    failure_cause,
    import_hvac,
    kek_versions,
)
from vault_server.crypto.providers.base import (
    ProviderStatus,
    WrappedDek,
    check_provider_id,
)

KIND: Final = "vault-transit"
KEY_TYPE: Final = "aes256-gcm96"


class TransitKeyProvider:
    """A ``KeyProvider`` backed by transit key ``<mount>/keys/<key_name>``."""

    def __init__(
        self,
        provider_id: str,
        *,
        address: str,
        mount: str,
        key_name: str,
        auth: TransitAuth,
        timeout: float,
        verify: bool | str,
        clock: Clock,
    ) -> None:
        hvac = import_hvac()
        import requests

        self._id = check_provider_id(provider_id)
        self._address, self._mount, self._name = address, mount, key_name
        self._auth = auth
        self._timeout = timeout
        self._hvac, self._requests = hvac, requests
        session = requests.Session()
        session.trust_env = False  # no proxy / CA bundle / netrc from the environment
        session.verify = verify  # hvac takes verify from a given session (hvac issue 991)
        self._client = hvac.Client(
            url=address,
            token="",
            verify=verify,
            timeout=timeout,
            allow_redirects=False,
            session=session,
        )
        self._login = TransitLogin(self._client, auth, clock)
        self._key_checked = False
        self._check_lock = threading.Lock()

    @property
    def provider_id(self) -> str:
        return self._id

    @property
    def kind(self) -> str:
        return KIND

    def wrap(self, dek: Secret, aad: bytes) -> WrappedDek:
        self._check_key()
        data = self._call(
            "encrypt",
            lambda: self._transit.encrypt_data(
                self._name,
                plaintext=b64(dek.reveal()),
                context=b64(aad),
                mount_point=self._mount,
            ),
        )
        return self._wrapped(data.get("ciphertext"))

    def unwrap(self, wrapped: WrappedDek, aad: bytes) -> Secret:
        ciphertext = self._own_ciphertext(wrapped)
        self._check_key()
        data = self._call(
            "decrypt",
            lambda: self._transit.decrypt_data(
                self._name, ciphertext=ciphertext, context=b64(aad), mount_point=self._mount
            ),
            rejected_is_tampering=True,
        )
        try:
            return Secret(base64.b64decode(str(data["plaintext"]), validate=True))
        except (KeyError, binascii.Error, ValueError):
            raise self._unavailable("decrypt", "bad_response") from None

    def rewrap(self, wrapped: WrappedDek, aad: bytes) -> WrappedDek:
        ciphertext = self._own_ciphertext(wrapped)
        self._check_key()
        data = self._call(
            "rewrap",
            lambda: self._transit.rewrap_data(
                self._name, ciphertext=ciphertext, context=b64(aad), mount_point=self._mount
            ),
            rejected_is_tampering=True,
        )
        return self._wrapped(data.get("ciphertext"))

    def rotate(self) -> int:
        self._call("rotate", lambda: self._transit.rotate_key(self._name, mount_point=self._mount))
        return self.active_version()

    def active_version(self) -> int:
        return as_int(self._read_key().get("latest_version"))

    def status(self) -> ProviderStatus:
        key = self._read_key()
        return ProviderStatus(self._id, KIND, as_int(key.get("latest_version")), kek_versions(key))

    def retire(self, version: int) -> None:
        """Retire ``version`` by raising the key's ``min_decryption_version`` past it.

        Transit can only retire a prefix of versions, so versions must be retired oldest first.
        """
        key = self._read_key()
        latest = as_int(key.get("latest_version"))
        min_decrypt = as_int(key.get("min_decryption_version"))
        if not 1 <= version <= latest:
            raise InvalidArgument("version", "no such KEK version")
        if version == latest:
            raise InvalidArgument("version", "is the active KEK version; rotate first")
        if version < min_decrypt:
            return
        if version > min_decrypt:
            raise InvalidArgument(
                "version", f"transit retires versions oldest first: retire {min_decrypt} first"
            )
        self._call(
            "retire",
            lambda: self._transit.update_key_configuration(
                self._name, min_decryption_version=version + 1, mount_point=self._mount
            ),
        )

    def __repr__(self) -> str:
        return (
            f"TransitKeyProvider(provider_id={self._id!r}, address={self._address!r}, "
            f"key='{self._mount}/keys/{self._name}', auth={self._auth!r}, "
            f"timeout={self._timeout})"
        )

    # --- internals --------------------------------------------------------------------------------
    @property
    def _transit(self) -> Any:
        return self._client.secrets.transit

    def _read_key(self) -> dict[str, Any]:
        data = self._call(
            "read_key", lambda: self._transit.read_key(self._name, mount_point=self._mount)
        )
        if as_int(data.get("latest_version")) < 1:
            raise self._unavailable("read_key", "bad_response")
        if (
            data.get("type") != KEY_TYPE
            or data.get("derived") is not True
            or data.get("convergent_encryption") is True
        ):
            raise KeyProviderUnavailable(
                f"transit key {self._mount}/keys/{self._name} must be type={KEY_TYPE} with "
                "derived=true and no convergent encryption (the derivation context binds the AAD)",
                metadata={"providerId": self._id, "cause": "misconfigured"},
            )
        return data

    def _check_key(self) -> None:
        if self._key_checked:
            return
        with self._check_lock:
            if not self._key_checked:
                self._read_key()
                self._key_checked = True

    def _own_ciphertext(self, wrapped: WrappedDek) -> str:
        """The transit ciphertext, checked to belong to this provider and the stated version."""
        if wrapped.provider_id != self._id:
            raise IntegrityCheckFailed("wrapped key belongs to another key provider")
        try:
            text = wrapped.blob.decode("ascii")
        except UnicodeDecodeError:
            raise IntegrityCheckFailed("wrapped key is malformed") from None
        match = CIPHERTEXT_RE.fullmatch(text)
        if match is None or int(match.group(1)) != wrapped.kek_version:
            raise IntegrityCheckFailed("wrapped key is malformed")
        return text

    def _wrapped(self, ciphertext: Any) -> WrappedDek:
        match = CIPHERTEXT_RE.fullmatch(ciphertext) if isinstance(ciphertext, str) else None
        if match is None:
            raise self._unavailable("encrypt", "bad_response")
        return WrappedDek(self._id, int(match.group(1)), ciphertext.encode("ascii"))

    def _call(
        self, op: str, request: Callable[[], Any], *, rejected_is_tampering: bool = False
    ) -> dict[str, Any]:
        """Run one transit request (logging in / renewing first), mapping every failure."""
        exc = self._hvac.exceptions
        for attempt in (1, 2):
            try:
                self._login.ensure()
            except KeyProviderUnavailable:
                raise
            except Exception as error:  # every auth failure is "unavailable"
                cause = self._cause(error, "authentication")
                raise self._unavailable(op, cause) from None
            try:
                response = request()
            except (exc.Forbidden, exc.Unauthorized):
                if attempt == 1 and self._login.can_relogin:
                    self._login.invalidate()
                    continue
                raise self._unavailable(op, "permission_denied") from None
            except exc.InvalidRequest:
                if rejected_is_tampering:
                    raise IntegrityCheckFailed("wrapped key failed authentication") from None
                raise self._unavailable(op, "rejected") from None
            except Exception as error:  # mapped to a cause, never leaked
                raise self._unavailable(op, self._cause(error)) from None
            data = response.get("data") if isinstance(response, dict) else None
            return data if isinstance(data, dict) else {}
        raise self._unavailable(op, "permission_denied")  # pragma: no cover - loop always returns

    def _cause(self, error: BaseException, default: str = "") -> str:
        return failure_cause(self._hvac, self._requests, error, default)

    def _unavailable(self, op: str, cause: str) -> KeyProviderUnavailable:
        return KeyProviderUnavailable(
            f"transit {op} failed ({cause.replace('_', ' ')})",
            metadata={"providerId": self._id, "cause": cause},
        )
