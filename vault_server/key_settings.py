"""Key-provider options from the ``keys`` settings: which settings feed which provider option,
secrets read from the environment variables the settings name, and errors that name the setting
the operator wrote (once). Used by the composition root and ``pipvault keys init-pkcs11``."""

from __future__ import annotations

from typing import Any

from vault_server.config import ConfigError, KeysSettings

#: Provider option -> the setting it comes from (errors name the setting the operator wrote).
KEY_OPTION_SETTINGS: dict[str, dict[str, str]] = {
    "vault-transit": {
        "address": "keys.transit_address",
        "timeout": "keys.transit_timeout_s",
        "ca_file": "keys.transit_ca_file",
        "token": "keys.transit_token_env",
        "role_id": "keys.transit_role_id",
        "secret_id": "keys.transit_secret_id_env",
        "approle_mount": "keys.transit_approle_mount",
        "kubernetes_role": "keys.transit_kubernetes_role",
        "kubernetes_jwt_path": "keys.transit_kubernetes_jwt_path",
        "kubernetes_mount": "keys.transit_kubernetes_mount",
    },
    "aws-kms": {
        "region": "keys.aws_region",
        "endpoint_url": "keys.aws_endpoint_url",
        "timeout": "keys.aws_timeout_s",
        "max_attempts": "keys.aws_max_attempts",
    },
    "pkcs11": {
        "module": "keys.pkcs11_module",
        "pin_file": "keys.pkcs11_pin_file",
        "pin_env": "keys.pkcs11_pin_env",
        "pool_size": "keys.pkcs11_pool_size",
    },
}


def key_provider_options(
    keys: KeysSettings, uri: str, storage_threads: int, environ: dict[str, str]
) -> dict[str, Any]:
    """The ``new_key_provider`` options for a remote provider URI, from the settings above
    (secrets read from the named environment variables)."""
    kind = uri.partition("://")[0]
    options: dict[str, Any] = {}
    if kind == "vault-transit":
        options.update(address=keys.transit_address, timeout=keys.transit_timeout_s)
        if keys.transit_ca_file is not None:
            options["ca_file"] = str(keys.transit_ca_file)
        if keys.transit_auth == "token":
            options["token"] = _env_secret(
                environ, "keys.transit_token_env", keys.transit_token_env
            )
        elif keys.transit_auth == "approle":
            if not keys.transit_role_id:
                raise ConfigError("keys.transit_role_id: required with transit_auth approle")
            options.update(
                role_id=keys.transit_role_id,
                secret_id=_env_secret(
                    environ, "keys.transit_secret_id_env", keys.transit_secret_id_env
                ),
                approle_mount=keys.transit_approle_mount,
            )
        else:
            if not keys.transit_kubernetes_role:
                raise ConfigError(
                    "keys.transit_kubernetes_role: required with transit_auth kubernetes"
                )
            options.update(
                kubernetes_role=keys.transit_kubernetes_role or None,
                kubernetes_mount=keys.transit_kubernetes_mount,
            )
            if keys.transit_kubernetes_jwt_path is not None:
                options["kubernetes_jwt_path"] = str(keys.transit_kubernetes_jwt_path)
    elif kind == "aws-kms":
        options.update(
            region=keys.aws_region,
            endpoint_url=keys.aws_endpoint_url,
            timeout=keys.aws_timeout_s,
            max_attempts=keys.aws_max_attempts,
        )
    elif kind == "pkcs11":
        options.update(
            module=str(keys.pkcs11_module) if keys.pkcs11_module else None,
            pin_file=str(keys.pkcs11_pin_file) if keys.pkcs11_pin_file else None,
            pin_env=keys.pkcs11_pin_env,
            pool_size=keys.pkcs11_pool_size or storage_threads,
        )
    return options


def _env_secret(environ: dict[str, str], setting: str, variable: str) -> str:
    value = environ.get(variable, "")
    if not value:
        raise ConfigError(f"{setting}: ${variable} is not set")
    return value


def key_setting_name(uri: str, field: str) -> str:
    """The setting an error about provider option ``field`` (``keys.providers.<id>.<opt>``) is
    really about, so the message names what the operator wrote, once."""
    option = field.rsplit(".", 1)[-1] if field.count(".") >= 3 else ""
    return KEY_OPTION_SETTINGS.get(uri.partition("://")[0], {}).get(option, field)
