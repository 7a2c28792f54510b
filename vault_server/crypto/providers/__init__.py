"""Key providers, chosen by URI (no global registry: the composition root builds and injects them).

============================================  =============================================
``local:///abs/path/keyring.json``            versioned keyring file (0600), rotatable
``local+env://VARNAME``                       keyring JSON (raw or base64) in ``$VARNAME``;
                                              read-only (rotate refuses)
``vault-transit://<mount>/keys/<name>``       HashiCorp Vault / OpenBao transit (needs hvac)
``aws-kms://<key id | alias/x | ARN>``        AWS KMS symmetric key (needs boto3)
``pkcs11://<token label>/<key label>``        AES-256 KEK in a PKCS#11 token (python-pkcs11)
============================================  =============================================

Options (keyword arguments of :func:`new_key_provider`):

- every kind: ``clock`` (``Clock``); local kinds also ``random`` (``Random``), ``local+env`` also
  ``environ`` (a mapping instead of ``os.environ``).
- ``vault-transit``: ``address`` (required; ``http://`` only on loopback), exactly one of
  ``token`` | ``role_id`` + ``secret_id`` (+ ``approle_mount``) | ``kubernetes_role``
  (+ ``kubernetes_jwt_path``, ``kubernetes_mount``); ``timeout`` seconds per HTTP call
  (default 3, at most 60); ``verify`` (bool, default True) or ``ca_file`` (CA bundle path).
- ``aws-kms``: ``region`` (else from the ARN or the AWS configuration), ``endpoint_url``
  (emulators, VPC endpoints), ``timeout`` seconds per connect/read (default 3, at most 60),
  ``max_attempts`` (1-5, default 2); credentials from the standard AWS chain.
- ``pkcs11``: ``module`` (PKCS#11 library path, required), exactly one of ``pin_file`` |
  ``pin_env``, ``pool_size`` (sessions, 1-256, default 8).

Everything is validated here, before any I/O on the network; an error names the setting
(``keys.providers.<id>`` or ``keys.providers.<id>.<option>``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from vault_server.core.clock import Clock, SystemClock
from vault_server.core.errors import InvalidArgument
from vault_server.core.secret import Secret
from vault_server.crypto.providers._transit_auth import DEFAULT_JWT_PATH, TransitAuth
from vault_server.crypto.providers.base import (
    KekState,
    KekVersionInfo,
    KeyProvider,
    ProviderStatus,
    WrappedDek,
    check_provider_id,
)
from vault_server.crypto.providers.local import (
    LocalKeyProvider,
    generate_keyring_document,
    init_local_keyring,
)

__all__ = [
    "KekState",
    "KekVersionInfo",
    "KeyProvider",
    "LocalKeyProvider",
    "ProviderStatus",
    "WrappedDek",
    "generate_keyring_document",
    "init_local_keyring",
    "new_key_provider",
]

_ENV_VAR_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_MOUNT: Final = r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*"
_TRANSIT_RE: Final = re.compile(rf"(?P<mount>{_MOUNT})/keys/(?P<name>[A-Za-z0-9_.-]{{1,128}})")
_MOUNT_RE: Final = re.compile(_MOUNT)
_USAGE: Final = (
    "use local:///abs/path, local+env://VARNAME, vault-transit://<mount>/keys/<name>, "
    "aws-kms://<key id or ARN> or pkcs11://<token label>/<key label>"
)
_LABEL_RE: Final = re.compile(r"[A-Za-z0-9 _.:-]{1,32}")
MAX_TIMEOUT_S: Final = 60.0


def new_key_provider(uri: str, provider_id: str, **options: Any) -> KeyProvider:
    """Build the key provider that ``uri`` names.

    Args:
        uri: ``local:///abs/path``, ``local+env://VAR`` or ``vault-transit://mount/keys/name``.
        provider_id: the configured id, recorded in every envelope it wraps.
        **options: see the module docstring.

    Raises:
        InvalidArgument: bad id, URI or option (the field names the setting).
        KeyProviderUnavailable: the keyring cannot be loaded, or hvac is missing.
    """
    check_provider_id(provider_id)
    setting = f"keys.providers.{provider_id}"
    scheme, sep, rest = uri.partition("://") if isinstance(uri, str) else ("", "", "")
    if not sep:
        raise InvalidArgument(setting, f"not a key provider URI; {_USAGE}")
    if scheme == "local":
        _allow(setting, options, {"clock", "random"})
        if not rest.startswith("/") or "\x00" in rest:
            raise InvalidArgument(setting, "local keyring path must be absolute (local:///path)")
        return LocalKeyProvider.from_file(provider_id, Path(rest), **options)
    if scheme == "local+env":
        _allow(setting, options, {"clock", "random", "environ"})
        if not _ENV_VAR_RE.fullmatch(rest):
            raise InvalidArgument(setting, "local+env:// needs an environment variable name")
        return LocalKeyProvider.from_env(provider_id, rest, **options)
    if scheme == "vault-transit":
        match = _TRANSIT_RE.fullmatch(rest)
        if match is None:
            raise InvalidArgument(setting, "use vault-transit://<mount>/keys/<name>")
        return _transit(provider_id, setting, match["mount"], match["name"], options)
    if scheme == "aws-kms":
        return _aws_kms(provider_id, setting, rest, options)
    if scheme == "pkcs11":
        return _pkcs11(provider_id, setting, rest, options)
    raise InvalidArgument(setting, f"unsupported key provider scheme; {_USAGE}")


def _transit(
    provider_id: str, setting: str, mount: str, name: str, options: Mapping[str, Any]
) -> KeyProvider:
    from vault_server.crypto.providers.transit import TransitKeyProvider

    _allow(
        setting,
        options,
        {
            "address", "token", "role_id", "secret_id", "approle_mount", "kubernetes_role",
            "kubernetes_jwt_path", "kubernetes_mount", "timeout", "verify", "ca_file", "clock",
        },
    )  # fmt: skip
    timeout = _timeout(setting, options)
    clock: Clock = options.get("clock") or SystemClock()
    return TransitKeyProvider(
        provider_id,
        address=endpoint_url(f"{setting}.address", options.get("address")),
        mount=mount,
        key_name=name,
        auth=_auth(setting, options),
        timeout=timeout,
        verify=_verify(setting, options),
        clock=clock,
    )


def _timeout(setting: str, options: Mapping[str, Any]) -> float:
    timeout = options.get("timeout", 3.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise InvalidArgument(f"{setting}.timeout", "must be a number of seconds")
    if not 0 < timeout <= MAX_TIMEOUT_S:
        raise InvalidArgument(f"{setting}.timeout", f"must be in (0, {MAX_TIMEOUT_S:g}] seconds")
    return float(timeout)


def _aws_kms(provider_id: str, setting: str, rest: str, options: Mapping[str, Any]) -> KeyProvider:
    from vault_server.crypto.providers.aws_kms import AwsKmsKeyProvider, parse_key

    _allow(setting, options, {"region", "endpoint_url", "timeout", "max_attempts", "clock"})
    region = options.get("region")
    if region is not None and not isinstance(region, str):
        raise InvalidArgument(f"{setting}.region", "must be an AWS region name")
    key_id, region = parse_key(setting, rest, region or None)
    endpoint = options.get("endpoint_url")
    if endpoint is not None:
        endpoint = endpoint_url(f"{setting}.endpoint_url", endpoint, "for aws-kms")
    attempts = options.get("max_attempts", 2)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 5:
        raise InvalidArgument(f"{setting}.max_attempts", "must be 1..5")
    return AwsKmsKeyProvider(
        provider_id,
        key_id=key_id,
        region=region,
        endpoint_url=endpoint,
        timeout=_timeout(setting, options),
        max_attempts=attempts,
    )


def _pkcs11(provider_id: str, setting: str, rest: str, options: Mapping[str, Any]) -> KeyProvider:
    from vault_server.crypto.providers._pkcs11_support import read_pin
    from vault_server.crypto.providers.pkcs11 import Pkcs11KeyProvider

    _allow(setting, options, {"module", "pin_file", "pin_env", "pool_size", "clock"})
    token, sep, key = rest.partition("/")
    if not sep or not _LABEL_RE.fullmatch(token) or not _LABEL_RE.fullmatch(key):
        raise InvalidArgument(setting, "use pkcs11://<token label>/<key label> (1-32 characters)")
    module = options.get("module")
    if not isinstance(module, str) or not Path(module).is_absolute():
        raise InvalidArgument(f"{setting}.module", "must be the absolute path of a PKCS#11 library")
    if not Path(module).is_file():
        raise InvalidArgument(f"{setting}.module", "no such PKCS#11 library file")
    pin_file, pin_env = options.get("pin_file"), options.get("pin_env")
    if bool(pin_file) == bool(pin_env):
        raise InvalidArgument(f"{setting}.pin_file", "configure exactly one of pin_file, pin_env")
    if pin_file and not Path(str(pin_file)).is_absolute():
        raise InvalidArgument(f"{setting}.pin_file", "must be an absolute path")
    if pin_env and not _ENV_VAR_RE.fullmatch(str(pin_env)):
        raise InvalidArgument(f"{setting}.pin_env", "must be an environment variable name")
    pool = options.get("pool_size", 8)
    if isinstance(pool, bool) or not isinstance(pool, int) or not 1 <= pool <= 256:
        raise InvalidArgument(f"{setting}.pool_size", "must be 1..256")
    return Pkcs11KeyProvider(
        provider_id,
        module=module,
        token_label=token,
        key_label=key,
        pin=read_pin(setting, Path(str(pin_file)) if pin_file else None, pin_env or None),
        pool_size=pool,
    )


def _allow(setting: str, options: Mapping[str, Any], allowed: set[str]) -> None:
    for key in sorted(set(options) - allowed):
        raise InvalidArgument(f"{setting}.{key}", "is not an option of this key provider kind")


def endpoint_url(
    field: str, value: Any, kind: str = "for vault-transit", *, allow_path: bool = False
) -> str:
    """An outbound endpoint: ``https://``, or ``http://`` on loopback only (127.0.0.0/8, ::1,
    localhost); host[:port] and, with ``allow_path``, a path; never a query, fragment or user."""
    if not isinstance(value, str) or not value:
        raise InvalidArgument(field, f"required {kind} (e.g. https://host:8200)")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument(field, "must be an http(s)://host[:port] URL")
    path_ok = allow_path or parts.path in ("", "/")
    if not path_ok or parts.query or parts.fragment or parts.username or parts.password:
        only = "scheme://host[:port]/path" if allow_path else "scheme://host[:port]"
        raise InvalidArgument(field, f"must be {only} only")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise InvalidArgument(field, "has an invalid port") from None
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise InvalidArgument(field, "plaintext http:// is allowed on loopback only; use https://")
    return value.rstrip("/")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _secret(field: str, value: Any) -> Secret:
    if isinstance(value, Secret) and value:
        return value
    if isinstance(value, str) and value:
        return Secret(value)
    raise InvalidArgument(field, "is empty or not set")


def _auth(setting: str, options: Mapping[str, Any]) -> TransitAuth:
    given = [
        m
        for m, keys in (
            ("token", ("token",)),
            ("approle", ("role_id", "secret_id")),
            ("kubernetes", ("kubernetes_role",)),
        )
        if any(options.get(k) for k in keys)
    ]
    if len(given) != 1:
        raise InvalidArgument(
            f"{setting}.token",
            "configure exactly one of token, role_id+secret_id, kubernetes_role",
        )
    approle_mount = _mount(f"{setting}.approle_mount", options.get("approle_mount", "approle"))
    k8s_mount = _mount(f"{setting}.kubernetes_mount", options.get("kubernetes_mount", "kubernetes"))
    if given[0] == "token":
        return TransitAuth("token", token=_secret(f"{setting}.token", options["token"]))
    if given[0] == "approle":
        role_id = options.get("role_id")
        if not isinstance(role_id, str) or not role_id:
            raise InvalidArgument(f"{setting}.role_id", "required with secret_id")
        return TransitAuth(
            "approle",
            role_id=role_id,
            secret_id=_secret(f"{setting}.secret_id", options.get("secret_id")),
            approle_mount=approle_mount,
        )
    role = options["kubernetes_role"]
    if not isinstance(role, str):
        raise InvalidArgument(f"{setting}.kubernetes_role", "must be a role name")
    jwt_path = Path(options.get("kubernetes_jwt_path") or DEFAULT_JWT_PATH)
    if not jwt_path.is_absolute():
        raise InvalidArgument(f"{setting}.kubernetes_jwt_path", "must be an absolute path")
    return TransitAuth(
        "kubernetes", kubernetes_role=role, kubernetes_jwt_path=jwt_path, kubernetes_mount=k8s_mount
    )


def _mount(field: str, value: Any) -> str:
    if not isinstance(value, str) or not _MOUNT_RE.fullmatch(value):
        raise InvalidArgument(field, "must be a mount path such as 'approle'")
    return value


def _verify(setting: str, options: Mapping[str, Any]) -> bool | str:
    verify = options.get("verify", True)
    if not isinstance(verify, bool):
        raise InvalidArgument(f"{setting}.verify", "must be true or false")
    ca_file = options.get("ca_file")
    if ca_file is None:
        return verify
    if not verify:
        raise InvalidArgument(f"{setting}.ca_file", "contradicts verify=false")
    path = Path(ca_file)
    if not path.is_absolute() or not path.is_file():
        raise InvalidArgument(f"{setting}.ca_file", "must be an absolute path to a CA bundle")
    return str(path)
