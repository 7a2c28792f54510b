"""The ``pkcs11`` key provider: an AES-256 KEK that never leaves a PKCS#11 token (needs
python-pkcs11). CloudHSM, Luna, YubiHSM and SoftHSM all speak PKCS#11.

``pkcs11://<token label>/<key label>``; options ``module`` (the vendor's PKCS#11 library),
``pin_file`` or ``pin_env`` (the user PIN; never in the configuration itself) and ``pool_size``
(sessions, sized to the storage threads, kept open and logged in). Calls into the library are
serialized per process (see ``_pkcs11_support.call_lock``).

**KEK versions** are secret-key objects with the key label and ``CKA_ID`` = the version as 4
big-endian bytes, generated *in the token* as AES-256 with ``CKA_SENSITIVE=true``,
``CKA_EXTRACTABLE=false``, ``CKA_TOKEN=true``: the key value can never be read out. The highest
version is active; ``retire`` destroys a version's object (it can never unwrap again).

**Wrapping** is ``C_Encrypt`` with ``CKM_AES_GCM`` inside the token: a random 96-bit IV, the
envelope AAD plus the KEK version (``aad || u32(version)``) as GCM additional data, a 128-bit tag;
the blob is ``iv || ciphertext || tag``. AES-GCM rather than ``CKM_AES_KEY_WRAP(_PAD)`` because
key wrap (RFC 3394/5649) has no associated data: with GCM a wrapped key presented for another
credential, version or KEK version fails *in the token*. Rewrapping is a decrypt and an encrypt
in the token (PKCS#11 has no re-encrypt): the DEK is in pipvault's memory for that moment, as it
is for every signature.

Errors: a GCM authentication failure (``CKR_ENCRYPTED_DATA_INVALID``, or ``CKR_GENERAL_ERROR`` as
SoftHSM2 reports it) on a key the token still holds, or a version the token does not hold while
the active one is there, is ``IntegrityCheckFailed``; every other failure (token absent, PIN
refused, session or device errors) is ``KeyProviderUnavailable`` with a ``cause``.
"""

from __future__ import annotations

import contextlib
import os
import queue
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final, TypeVar

from vault_server.core.errors import (
    IntegrityCheckFailed,
    InvalidArgument,
    KeyProviderUnavailable,
)
from vault_server.core.secret import Secret
from vault_server.crypto.providers._pkcs11_support import (
    call_lock,
    failure_cause,
    import_pkcs11,
    load_lib,
)
from vault_server.crypto.providers.base import (
    KekState,
    KekVersionInfo,
    ProviderStatus,
    WrappedDek,
    check_provider_id,
)

KIND: Final = "pkcs11"
IV_BYTES: Final = 12
TAG_BITS: Final = 128
_T = TypeVar("_T")


class Pkcs11KeyProvider:
    """A ``KeyProvider`` whose KEK versions live in one PKCS#11 token (see module docstring)."""

    def __init__(
        self,
        provider_id: str,
        *,
        module: str,
        token_label: str,
        key_label: str,
        pin: Secret,
        pool_size: int,
    ) -> None:
        self._pk = import_pkcs11()
        from pkcs11.mechanisms import GCMParams

        self._gcm = GCMParams
        self._id = check_provider_id(provider_id)
        self._module, self._token_label, self._key_label = module, token_label, key_label
        self._pin = pin
        self._pool_size = pool_size
        self._pool: queue.LifoQueue[Any] = queue.LifoQueue()
        self._opened = 0
        self._open_lock = threading.Lock()
        self._rotate_lock = threading.Lock()
        self._token: Any = None

    @property
    def provider_id(self) -> str:
        return self._id

    @property
    def kind(self) -> str:
        return KIND

    def wrap(self, dek: Secret, aad: bytes) -> WrappedDek:
        def run(session: Any) -> WrappedDek:
            version, key = self._active(session)
            iv = os.urandom(IV_BYTES)
            ct = key.encrypt(dek.reveal(), mechanism=self._mech, mechanism_param=self._param(
                iv, aad, version))  # fmt: skip
            return WrappedDek(self._id, version, iv + bytes(ct))

        return self._with_session("encrypt", run)

    def unwrap(self, wrapped: WrappedDek, aad: bytes) -> Secret:
        self._own(wrapped)
        return self._with_session("decrypt", lambda s: Secret(self._decrypt(s, wrapped, aad)))

    def rewrap(self, wrapped: WrappedDek, aad: bytes) -> WrappedDek:
        self._own(wrapped)

        def run(session: Any) -> WrappedDek:
            plain = Secret(self._decrypt(session, wrapped, aad))
            version, key = self._active(session)
            iv = os.urandom(IV_BYTES)
            ct = key.encrypt(plain.reveal(), mechanism=self._mech, mechanism_param=self._param(
                iv, aad, version))  # fmt: skip
            return WrappedDek(self._id, version, iv + bytes(ct))

        return self._with_session("rewrap", run)

    def rotate(self) -> int:
        def run(session: Any) -> int:
            with self._rotate_lock:
                versions = self._versions(session)
                new = (max(versions) if versions else 0) + 1
                self._generate(session, new)
                return new

        return self._with_session("rotate", run)

    def ensure_key(self) -> int:
        """Generate version 1 in the token when no version exists yet (provisioning)."""
        return self.provision()[0]

    def provision(self) -> tuple[int, bool]:
        """:meth:`ensure_key`, also saying whether this call generated the key (True) or found
        one already in the token (False), decided under the token session and rotate lock."""

        def run(session: Any) -> tuple[int, bool]:
            with self._rotate_lock:
                versions = self._versions(session)
                if versions:
                    return max(versions), False
                self._generate(session, 1)
                return 1, True

        return self._with_session("generate", run)

    def active_version(self) -> int:
        return self._with_session("find", lambda s: self._active(s)[0])

    def status(self) -> ProviderStatus:
        versions = self._with_session("find", self._versions)
        if not versions:
            raise self._unavailable("find", "no_key")
        active = max(versions)
        infos = tuple(
            KekVersionInfo(v, KekState.ACTIVE if v == active else KekState.DECRYPT_ONLY, None)
            for v in sorted(versions, reverse=True)
        )
        return ProviderStatus(self._id, KIND, active, infos)

    def retire(self, version: int) -> None:
        def run(session: Any) -> None:
            with self._rotate_lock:
                versions = self._versions(session)
                if version not in versions:
                    raise InvalidArgument("version", "no such KEK version")
                if version == max(versions):
                    raise InvalidArgument("version", "is the active KEK version; rotate first")
                versions[version].destroy()

        self._with_session("retire", run)

    def close(self) -> None:
        while True:
            try:
                session = self._pool.get_nowait()
            except queue.Empty:
                return
            with contextlib.suppress(Exception), call_lock(self._module):  # best effort
                session.close()

    def __repr__(self) -> str:
        return (
            f"Pkcs11KeyProvider(provider_id={self._id!r}, module={self._module!r}, "
            f"token={self._token_label!r}, key={self._key_label!r}, pool={self._pool_size})"
        )

    # --- internals --------------------------------------------------------------------------------
    @property
    def _mech(self) -> Any:
        return self._pk.Mechanism.AES_GCM

    def _param(self, iv: bytes, aad: bytes, version: int) -> Any:
        return self._gcm(iv, aad + struct.pack(">I", version), TAG_BITS)

    def _generate(self, session: Any, version: int) -> None:
        attr = self._pk.Attribute
        session.generate_key(
            self._pk.KeyType.AES, 256, label=self._key_label, id=struct.pack(">I", version),
            store=True,
            template={
                attr.SENSITIVE: True, attr.EXTRACTABLE: False, attr.ENCRYPT: True,
                attr.DECRYPT: True, attr.WRAP: False, attr.UNWRAP: False, attr.PRIVATE: True,
            },
        )  # fmt: skip

    def _versions(self, session: Any) -> dict[int, Any]:
        attr = self._pk.Attribute
        found: dict[int, Any] = {}
        for obj in session.get_objects(
            {attr.CLASS: self._pk.ObjectClass.SECRET_KEY, attr.LABEL: self._key_label}
        ):
            ident = bytes(obj[attr.ID])
            if len(ident) == 4:
                found[struct.unpack(">I", ident)[0]] = obj
        return found

    def _active(self, session: Any) -> tuple[int, Any]:
        versions = self._versions(session)
        if not versions:
            raise self._unavailable("find", "no_key")
        active = max(versions)
        return active, versions[active]

    def _decrypt(self, session: Any, wrapped: WrappedDek, aad: bytes) -> bytes:
        versions = self._versions(session)
        key = versions.get(wrapped.kek_version)
        if key is None:
            if not versions:
                raise self._unavailable("decrypt", "no_key")
            raise IntegrityCheckFailed("wrapped key names an unknown or retired KEK version")
        iv, ct = wrapped.blob[:IV_BYTES], wrapped.blob[IV_BYTES:]
        errors = self._pk.exceptions
        try:
            plain = key.decrypt(
                ct, mechanism=self._mech, mechanism_param=self._param(iv, aad, wrapped.kek_version)
            )
        except (
            errors.EncryptedDataInvalid,
            errors.EncryptedDataLenRange,
            errors.DataInvalid,
            errors.DataLenRange,
            errors.GeneralError,  # SoftHSM2's answer to a GCM tag mismatch
        ):
            raise IntegrityCheckFailed("wrapped key failed authentication") from None
        return bytes(plain)

    def _own(self, wrapped: WrappedDek) -> None:
        if wrapped.provider_id != self._id:
            raise IntegrityCheckFailed("wrapped key belongs to another key provider")
        if len(wrapped.blob) != IV_BYTES + 32 + TAG_BITS // 8 or wrapped.kek_version < 1:
            raise IntegrityCheckFailed("wrapped key is malformed")

    def _with_session(self, op: str, run: Callable[[Any], _T]) -> _T:
        try:
            with self._session(op) as session, call_lock(self._module):
                return run(session)
        except (IntegrityCheckFailed, KeyProviderUnavailable, InvalidArgument):
            raise
        except self._pk.exceptions.PKCS11Error as error:
            raise self._unavailable(op, failure_cause(self._pk, error)) from None
        except Exception:  # mapped, never leaked
            raise self._unavailable(op, "server_error") from None

    @contextmanager
    def _session(self, op: str) -> Iterator[Any]:
        session = self._checkout(op)
        healthy = True
        try:
            yield session
        except self._pk.exceptions.PKCS11Error as error:
            healthy = not isinstance(
                error,
                (
                    self._pk.exceptions.SessionHandleInvalid,
                    self._pk.exceptions.SessionClosed,
                    self._pk.exceptions.DeviceRemoved,
                    self._pk.exceptions.DeviceError,
                    self._pk.exceptions.TokenNotPresent,
                    self._pk.exceptions.UserNotLoggedIn,
                ),
            )
            raise
        finally:
            if healthy:
                self._pool.put(session)
            else:
                with self._open_lock:
                    self._opened -= 1

    def _checkout(self, op: str) -> Any:
        try:
            return self._pool.get_nowait()
        except queue.Empty:
            pass
        with self._open_lock:
            if self._opened < self._pool_size:
                with call_lock(self._module):
                    session = self._open(op)
                self._opened += 1
                return session
        try:
            return self._pool.get(timeout=30)
        except queue.Empty:
            raise self._unavailable(op, "busy") from None

    def _open(self, op: str) -> Any:
        errors = self._pk.exceptions
        try:
            if self._token is None:
                lib = load_lib(self._pk, self._module)
                self._token = lib.get_token(token_label=self._token_label)
            try:
                return self._token.open(user_pin=self._pin.reveal_text(), rw=True)
            except errors.UserAlreadyLoggedIn:  # login is per application, not per session
                return self._token.open(rw=True)
        except (errors.NoSuchToken, errors.MultipleTokensReturned):
            self._token = None
            raise self._unavailable(op, "no_token") from None
        except (errors.PinIncorrect, errors.PinInvalid, errors.PinLenRange, errors.PinExpired):
            raise self._unavailable(op, "pin_refused") from None
        except (OSError, RuntimeError) as error:
            raise self._unavailable(op, failure_cause(self._pk, error)) from None

    def _unavailable(self, op: str, cause: str) -> KeyProviderUnavailable:
        return KeyProviderUnavailable(
            f"pkcs11 {op} failed ({cause.replace('_', ' ')})",
            metadata={"providerId": self._id, "cause": cause},
        )
