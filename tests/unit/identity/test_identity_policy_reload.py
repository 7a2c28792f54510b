"""Policy reload: one store behind every identity source; invalid files keep the old policy."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from tests.support.certs import TRUST_DOMAIN, write_atomically
from vault_server.auth.identity import CallCredentials, identify
from vault_server.auth.jwt_source import JwtSource
from vault_server.auth.policy import PolicyError
from vault_server.auth.policy_store import PolicyStore
from vault_server.auth.spiffe import SpiffeSource

NOW = 1_750_000_000
AUD = "pipvault"


def spiffe(name: str) -> str:
    return f"spiffe://{TRUST_DOMAIN}/ns/trading/sa/{name}"


def subject(name: str) -> str:
    return f"system:serviceaccount:trading:{name}"


def principal(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": name,
        "roles": ["router"],
        "workspaces": ["ws-a"],
        "spiffe_id": spiffe(name),
        "jwt_subject": subject(name),
        **extra,
    }


def write_policy(path: Path, *principals: dict[str, Any]) -> None:
    write_atomically(path, yaml.safe_dump({"principals": list(principals)}).encode())


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.policy_path = tmp_path / "policy.yaml"
        write_policy(self.policy_path, principal("router-1"))
        self.key = ec.generate_private_key(ec.SECP256R1())
        jwks = tmp_path / "jwks.json"
        jwk = {**ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True), "kid": "k1"}
        jwks.write_text(json.dumps({"keys": [jwk]}))
        self.store = PolicyStore.load(self.policy_path)
        self.sources = [
            SpiffeSource(self.store, TRUST_DOMAIN),
            JwtSource(self.store, jwks, AUD, clock=lambda: NOW),
        ]

    def by_cert(self, name: str) -> str | None:
        entry = identify(self.sources, CallCredentials({}, (spiffe(name),)))
        return entry.principal.id if entry else None

    def by_jwt(self, name: str) -> str | None:
        token = jwt.encode(
            {"sub": subject(name), "aud": AUD, "iat": NOW, "exp": NOW + 600},
            self.key,
            algorithm="ES256",
            headers={"kid": "k1"},
        )
        entry = identify(self.sources, CallCredentials({"authorization": f"Bearer {token}"}))
        return entry.principal.id if entry else None


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


def test_a_reload_applies_to_every_source_at_once(world: World) -> None:
    assert world.by_cert("router-1") == "router-1"
    assert world.by_jwt("router-1") == "router-1"
    assert world.by_cert("router-2") is None
    assert world.by_jwt("router-2") is None

    write_policy(world.policy_path, principal("router-2"))
    assert world.store.reload_if_changed() is None
    assert world.store.generation == 1

    assert world.by_cert("router-2") == "router-2"
    assert world.by_jwt("router-2") == "router-2"
    assert world.by_cert("router-1") is None  # removed: stops working everywhere
    assert world.by_jwt("router-1") is None


def test_an_unchanged_file_is_not_reloaded(world: World) -> None:
    before = world.store.current()
    os.utime(world.policy_path)
    assert world.store.reload_if_changed() is None
    assert world.store.current() is before
    assert world.store.generation == 0


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"principals: [", "not YAML"),
        (b"", "no principals"),  # truncated to nothing by a careless writer
        (b"principals: []", "no principals"),
        (b"principals:\n  - id: x\n    roles: [root]\n    workspaces: [a]\n", "roles"),
        (
            b"principals:\n  - id: x\n    roles: [router]\n    workspaces: [a]\n    extra: 1\n",
            "extra",
        ),
        (b"principals:\n  - {id: x, roles: [router], workspaces: ['*', a]}\n", "stand alone"),
    ],
)
def test_an_invalid_file_keeps_the_old_policy(world: World, content: bytes, why: str) -> None:
    before = world.store.current()
    world.policy_path.write_bytes(content)
    error = world.store.reload_if_changed()
    assert error is not None and why in error
    assert world.store.current() is before
    assert world.by_cert("router-1") == "router-1"
    assert world.by_jwt("router-1") == "router-1"
    # Reported once per change, not on every poll.
    assert world.store.reload_if_changed() is None
    # Fixing the file applies it.
    write_policy(world.policy_path, principal("router-1"), principal("router-3"))
    assert world.store.reload_if_changed() is None
    assert world.by_jwt("router-3") == "router-3"


def test_a_deleted_file_keeps_the_old_policy(world: World) -> None:
    world.policy_path.unlink()
    error = world.store.reload_if_changed()
    assert error is not None and "No such file" in error
    assert world.by_cert("router-1") == "router-1"
    write_policy(world.policy_path, principal("router-2"))
    assert world.store.reload_if_changed() is None
    assert world.by_cert("router-2") == "router-2"


def test_loading_an_invalid_file_fails_start_up(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="No such file"):
        PolicyStore.load(tmp_path / "missing.yaml")
    (tmp_path / "p.yaml").write_text("principals: [")
    with pytest.raises(PolicyError, match="not YAML"):
        PolicyStore.load(tmp_path / "p.yaml")


def test_a_fixed_store_never_reloads(world: World) -> None:
    fixed = PolicyStore(world.store.current())
    assert fixed.reload_if_changed() is None
    assert fixed.current() is world.store.current()
