"""Start the back ends a pair of key providers needs and produce the vault's ``keys`` settings.

Provider ids in the matrix are the kinds' short names: ``local``, ``transit`` (OpenBao, logged in
with **AppRole** from the settings, the secret id in an environment variable), ``aws`` (moto's KMS
server) and ``hsm`` (a SoftHSM2 token). Each test gets back ends of its own, so it may take one
down (an outage) without touching other tests.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.integration.crypto.openbao import OpenBao, start_openbao, transit_policy
from tests.integration.keys.kms_fixtures import SoftHsmToken, start_moto
from vault_server.crypto.providers import new_key_provider
from vault_server.crypto.providers.pkcs11 import Pkcs11KeyProvider

SECRET_ID_ENV = "PIPVAULT_TEST_TRANSIT_SECRET_ID"


@dataclass
class Backends:
    keys: dict[str, Any]
    outages: dict[str, Callable[[], None]] = field(default_factory=dict)
    logs: list[Path] = field(default_factory=list)
    _stops: list[Callable[[], None]] = field(default_factory=list)

    def stop(self) -> None:
        for stop in reversed(self._stops):
            stop()


def start_backends(
    ids: tuple[str, ...], home: Path, primary: str, hsm_token: SoftHsmToken | None
) -> Backends:
    providers: dict[str, str] = {}
    keys: dict[str, Any] = {"providers": providers, "primary": primary}
    backends = Backends(keys)
    try:
        for pid in ids:
            if pid == "local":
                providers["local"] = f"local://{home / 'keyring.json'}"
            elif pid == "transit":
                bao = start_openbao(home.parent / "openbao")
                backends._stops.append(bao.stop)
                backends.outages["transit"] = bao.stop
                backends.logs.append(bao.log_path)
                providers["transit"] = "vault-transit://transit/keys/pipvault"
                keys.update(_approle(bao), transit_address=bao.address, transit_timeout_s=2)
            elif pid == "aws":
                moto = start_moto()
                backends._stops.append(moto.stop)
                backends.outages["aws"] = moto.stop
                providers["aws"] = f"aws-kms://{moto.create_key()}"
                keys.update(aws_endpoint_url=moto.endpoint, aws_timeout_s=2, aws_max_attempts=2)
            elif pid == "hsm":
                assert hsm_token is not None
                providers["hsm"] = f"pkcs11://{hsm_token.label}/pipvault-kek"
                keys.update(pkcs11_module=hsm_token.module, pkcs11_pin_file=str(hsm_token.pin_file))
                provision_hsm_key(hsm_token)
                # No in-process HSM outage: SoftHSM2 cannot open any token again in a process
                # that saw one vanish. hsm_outage_probe takes a token away in its own process.
    except BaseException:
        backends.stop()
        raise
    return backends


def provision_hsm_key(token: SoftHsmToken) -> None:
    """Generate KEK version 1 in the token (what an HSM operator does once)."""
    provider = new_key_provider(
        f"pkcs11://{token.label}/pipvault-kek", "provision", **token.options()
    )
    assert isinstance(provider, Pkcs11KeyProvider)
    provider.ensure_key()
    provider.close()


def _approle(bao: OpenBao) -> dict[str, Any]:
    """A transit key, the least-privilege policy and an AppRole holding it; the secret id goes
    into the environment (``keys.transit_secret_id_env``), never into the settings."""
    bao.create_transit_key("pipvault")
    root = bao.client()
    root.sys.create_or_update_policy(name="pipvault", policy=transit_policy("transit", "pipvault"))
    root.sys.enable_auth_method("approle", path="approle")
    root.auth.approle.create_or_update_approle(
        "pipvault", token_policies=["pipvault"], token_ttl="1h", token_max_ttl="4h"
    )
    role_id = root.auth.approle.read_role_id("pipvault")["data"]["role_id"]
    os.environ[SECRET_ID_ENV] = root.auth.approle.generate_secret_id("pipvault")["data"][
        "secret_id"
    ]
    return {
        "transit_auth": "approle",
        "transit_role_id": role_id,
        "transit_secret_id_env": SECRET_ID_ENV,
    }


def new_marker() -> str:
    return secrets.token_hex(4)
