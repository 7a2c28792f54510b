"""aws-kms:// and pkcs11:// URIs and options are validated before any I/O, errors name the
setting, and no PIN or credential ever shows in a repr or a message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vault_server.config import ConfigError, load_settings
from vault_server.core.errors import InvalidArgument, KeyProviderUnavailable
from vault_server.crypto.providers import new_key_provider
from vault_server.crypto.providers.aws_kms import AwsKmsKeyProvider

ARN = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"


@pytest.mark.parametrize(
    ("uri", "options", "region"),
    [
        (f"aws-kms://{ARN}", {}, "eu-west-1"),
        ("aws-kms://arn:aws:kms:us-east-2:123456789012:alias/pipvault", {}, "us-east-2"),
        ("aws-kms://11111111-2222-3333-4444-555555555555", {"region": "ap-south-1"}, "ap-south-1"),
        ("aws-kms://alias/pipvault-kek", {"region": "eu-central-1"}, "eu-central-1"),
    ],
)
def test_aws_kms_uris(uri: str, options: dict[str, Any], region: str) -> None:
    provider = new_key_provider(uri, "aws", **options)
    assert isinstance(provider, AwsKmsKeyProvider) and provider.kind == "aws-kms"
    assert f"region={region!r}" in repr(provider)


@pytest.mark.parametrize(
    ("uri", "options", "field"),
    [
        ("aws-kms://", {}, "keys.providers.aws"),
        ("aws-kms://not a key", {}, "keys.providers.aws"),
        ("aws-kms://arn:aws:kms:eu-west-1:1234:key/x", {}, "keys.providers.aws"),
        (f"aws-kms://{ARN}", {"region": "us-east-1"}, "keys.providers.aws.region"),
        ("aws-kms://alias/x", {"region": "Mars"}, "keys.providers.aws.region"),
        (f"aws-kms://{ARN}", {"timeout": 0}, "keys.providers.aws.timeout"),
        (f"aws-kms://{ARN}", {"timeout": 120}, "keys.providers.aws.timeout"),
        (f"aws-kms://{ARN}", {"max_attempts": 9}, "keys.providers.aws.max_attempts"),
        (
            f"aws-kms://{ARN}",
            {"endpoint_url": "http://10.1.2.3:4566"},
            "keys.providers.aws.endpoint_url",
        ),
        (f"aws-kms://{ARN}", {"endpoint_url": "ftp://x"}, "keys.providers.aws.endpoint_url"),
        (f"aws-kms://{ARN}", {"access_key": "AKIA"}, "keys.providers.aws.access_key"),
    ],
)
def test_aws_kms_bad_uris_and_options(uri: str, options: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        new_key_provider(uri, "aws", **options)
    assert err.value.metadata["field"] == field


def test_aws_kms_without_region_says_how_to_set_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(InvalidArgument) as err:
        new_key_provider("aws-kms://alias/pipvault", "aws")
    assert err.value.metadata["field"] == "keys.providers.aws.region"


@pytest.fixture
def module(tmp_path: Path) -> str:
    lib = tmp_path / "libvendor-pkcs11.so"
    lib.write_bytes(b"\x7fELF")
    return str(lib)


@pytest.mark.parametrize(
    ("uri", "options", "field"),
    [
        ("pkcs11://tok", {}, "keys.providers.hsm"),
        ("pkcs11://tok/", {}, "keys.providers.hsm"),
        ("pkcs11://" + "t" * 33 + "/k", {}, "keys.providers.hsm"),
        (
            "pkcs11://tok/k",
            {"module": "relative.so", "pin_env": "PIN"},
            "keys.providers.hsm.module",
        ),
        (
            "pkcs11://tok/k",
            {"module": "/nonexistent/lib.so", "pin_env": "PIN"},
            "keys.providers.hsm.module",
        ),
        ("pkcs11://tok/k", {"pin_env": "PIN", "pin_file": "/x"}, "keys.providers.hsm.pin_file"),
        ("pkcs11://tok/k", {}, "keys.providers.hsm.pin_file"),
        ("pkcs11://tok/k", {"pin_file": "rel/pin"}, "keys.providers.hsm.pin_file"),
        ("pkcs11://tok/k", {"pin_env": "1BAD"}, "keys.providers.hsm.pin_env"),
        ("pkcs11://tok/k", {"pin_env": "PIN", "pool_size": 0}, "keys.providers.hsm.pool_size"),
        ("pkcs11://tok/k", {"pin_env": "PIN", "pin": "1234"}, "keys.providers.hsm.pin"),
    ],
)
def test_pkcs11_bad_uris_and_options(
    uri: str, options: dict[str, Any], field: str, module: str
) -> None:
    with pytest.raises(InvalidArgument) as err:
        new_key_provider(uri, "hsm", **{"module": module, **options})
    assert err.value.metadata["field"] == field


def test_pkcs11_pin_from_env_or_file_never_shown(
    module: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HSM_PIN", "73914625")
    provider = new_key_provider("pkcs11://tok/kek", "hsm", module=module, pin_env="HSM_PIN")
    assert "73914625" not in repr(provider) and "pool=8" in repr(provider)
    pin_file = tmp_path / "pin"
    pin_file.write_text("86420135\n")
    provider = new_key_provider("pkcs11://tok/kek", "hsm", module=module, pin_file=str(pin_file))
    assert "86420135" not in repr(provider)
    monkeypatch.delenv("HSM_PIN")
    with pytest.raises(KeyProviderUnavailable) as err:
        new_key_provider("pkcs11://tok/kek", "hsm", module=module, pin_env="HSM_PIN")
    assert "$HSM_PIN" in err.value.message
    with pytest.raises(KeyProviderUnavailable) as err:
        new_key_provider("pkcs11://tok/kek", "hsm", module=module, pin_file=str(tmp_path / "no"))
    assert "pin_file" in err.value.message


def test_settings_errors_name_the_setting(tmp_path: Path, module: str) -> None:
    from vault_server.app import build_key_providers
    from vault_server.core.clock import SystemClock, SystemRandom

    def error(keys: dict[str, Any]) -> str:
        settings = load_settings(None, mode="dev", home=str(tmp_path), keys=keys)
        with pytest.raises(ConfigError) as err:
            build_key_providers(settings, SystemClock(), SystemRandom())
        return str(err.value)

    hsm = {"providers": {"hsm": "pkcs11://tok/kek"}, "primary": "hsm"}
    assert error(hsm).startswith("keys.pkcs11_module: ")
    assert error({**hsm, "pkcs11_module": module}).startswith("keys.pkcs11_pin_file: ")
    aws = {"providers": {"aws": f"aws-kms://{ARN}"}, "primary": "aws"}
    message = error({**aws, "aws_endpoint_url": "http://192.0.2.1:4566"})
    assert message.startswith("keys.aws_endpoint_url: ") and message.count("keys.") == 1
