"""new_key_provider: URI and option validation fails fast and names the setting."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from vault_server.core.errors import InvalidArgument
from vault_server.core.secret import Secret
from vault_server.crypto.providers import init_local_keyring, new_key_provider
from vault_server.crypto.providers.transit import TransitKeyProvider

TRANSIT = "vault-transit://transit/keys/pipvault"
OK: dict[str, Any] = {"address": "https://openbao.example:8200", "token": "s.dummy"}


def setting_error(uri: str, provider_id: str = "kek", **options: Any) -> str:
    with pytest.raises(InvalidArgument) as info:
        new_key_provider(uri, provider_id, **options)
    assert info.value.field == info.value.metadata["field"]
    return info.value.field


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "local",
        "/abs/path/keyring.json",
        "local://relative/keyring.json",
        "local:relative",
        "file:///abs/keyring.json",
        "local+env://",
        "local+env://1BAD",
        "local+env://BAD-NAME",
        "vault-transit://transit",
        "vault-transit://transit/keys/",
        "vault-transit:///keys/name",
        "vault-transit://transit/key/name",
        "vault-transit://transit/keys/na/me",
        "vault-transit://tran sit/keys/name",
        "hcvault://transit/keys/name",
    ],
)
def test_bad_uris_name_the_provider_setting(uri: str) -> None:
    assert setting_error(uri, **(OK if uri.startswith("vault") else {})) == "keys.providers.kek"


@pytest.mark.parametrize("provider_id", ["", "UPPER", "-lead", "a" * 65, "sp ace", "é"])
def test_bad_provider_ids(provider_id: str, tmp_path: Path) -> None:
    assert setting_error(f"local://{tmp_path}/k.json", provider_id) == "provider_id"


def test_unknown_options_are_named(tmp_path: Path) -> None:
    init_local_keyring(tmp_path / "k.json")
    assert setting_error(f"local://{tmp_path}/k.json", token="x") == "keys.providers.kek.token"
    assert setting_error(TRANSIT, **OK, colour="red") == "keys.providers.kek.colour"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"token": "t"}, "address"),
        ({**OK, "address": "openbao:8200"}, "address"),
        ({**OK, "address": "ftp://openbao"}, "address"),
        ({**OK, "address": "http://openbao.example:8200"}, "address"),  # plaintext, not loopback
        ({**OK, "address": "https://openbao:8200/v1"}, "address"),
        ({**OK, "address": "https://user@openbao:8200"}, "address"),
        ({**OK, "address": "https://openbao:99999"}, "address"),
        ({**OK, "timeout": 0}, "timeout"),
        ({**OK, "timeout": 61}, "timeout"),
        ({**OK, "timeout": "3"}, "timeout"),
        ({**OK, "timeout": True}, "timeout"),
        ({"address": OK["address"]}, "token"),
        ({**OK, "role_id": "r", "secret_id": "s"}, "token"),
        ({**OK, "token": ""}, "token"),
        ({"address": OK["address"], "secret_id": "s"}, "role_id"),
        ({"address": OK["address"], "role_id": "r"}, "secret_id"),
        ({"address": OK["address"], "role_id": "r", "secret_id": "s", "approle_mount": "a b"},
         "approle_mount"),
        ({"address": OK["address"], "kubernetes_role": "r", "kubernetes_jwt_path": "rel/token"},
         "kubernetes_jwt_path"),
        ({**OK, "verify": "yes"}, "verify"),
        ({**OK, "ca_file": "/nonexistent/ca.pem"}, "ca_file"),
        ({**OK, "ca_file": __file__, "verify": False}, "ca_file"),
    ],
)  # fmt: skip
def test_transit_options_validated(options: dict[str, Any], field: str) -> None:
    assert setting_error(TRANSIT, **options) == f"keys.providers.kek.{field}"


@pytest.mark.parametrize(
    "options",
    [
        OK,
        {**OK, "token": Secret("s.dummy"), "timeout": 0.5, "verify": False},
        {**OK, "address": "http://127.0.0.1:8200"},
        {**OK, "address": "http://[::1]:8200/"},
        {**OK, "address": "http://localhost:8200"},
        {**OK, "ca_file": __file__},
        {
            "address": OK["address"],
            "role_id": "r",
            "secret_id": Secret("s"),
            "approle_mount": "a/b",
        },
        {"address": OK["address"], "kubernetes_role": "pipvault"},
    ],
)
def test_transit_construction_touches_no_network(options: dict[str, Any]) -> None:
    provider = new_key_provider("vault-transit://nested/transit/keys/kek.v1", "kek", **options)
    assert isinstance(provider, TransitKeyProvider)
    assert provider.kind == "vault-transit"
    assert provider.provider_id == "kek"
    assert "nested/transit/keys/kek.v1" in repr(provider)


def test_missing_hvac_gives_an_install_hint() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["hvac"] = None  # what an install without the [transit] extra looks like
        from vault_server.core.errors import KeyProviderUnavailable
        from vault_server.crypto.providers import new_key_provider
        try:
            new_key_provider("vault-transit://transit/keys/k", "kek",
                             address="https://openbao:8200", token="t")
        except KeyProviderUnavailable as exc:
            print(exc.message)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "install pipvault[transit] (or hvac)" in out.stdout


def test_crypto_package_imports_neither_hvac_nor_grpc_eagerly() -> None:
    code = (
        "import sys, vault_server.crypto.envelope, vault_server.crypto.providers;"
        "print(sorted(m for m in ('hvac', 'grpc', 'sqlalchemy', 'google.protobuf') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
