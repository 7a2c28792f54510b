"""Configuration and policy validation: bad input stops start-up naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from vault_server.auth.authorizer import authorize_call, authorize_workspace
from vault_server.auth.policy import PolicyError, hash_token, parse_policy
from vault_server.auth.principal import Principal, PrincipalType, Role
from vault_server.auth.rpc_roles import RULES, Plane
from vault_server.config import ConfigError, load_settings
from vault_server.core.errors import NotFound, PermissionDenied, WrongListener


def test_invalid_values_name_the_setting(tmp_path: Path) -> None:
    cases = {
        "limits.max_concurrent_rpcs": {"limits": {"max_concurrent_rpcs": 0}},
        "listen.admin_address": {"listen": {"admin_address": "nope"}},
        "log_level": {"log_level": "LOUD"},
        "event_loop": {"event_loop": "trio"},
        "unknown_setting": {"unknown_setting": 1},
    }
    for setting, override in cases.items():
        with pytest.raises(ConfigError, match=setting.split(".")[-1]):
            load_settings(None, mode="dev", **override)


def test_production_needs_database_keys_and_policy() -> None:
    with pytest.raises(ConfigError, match="database_url"):
        load_settings(None, mode="production")


def test_plaintext_tcp_is_loopback_only() -> None:
    with pytest.raises(ConfigError, match="listen.admin_address: plaintext"):
        load_settings(None, mode="dev", listen={"admin_address": "0.0.0.0:8201"})
    assert load_settings(None, mode="dev", listen={"admin_address": "[::1]:1"}).listen.admin_address


def test_file_environment_and_overrides_precedence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "pipvault.yaml"
    cfg.write_text("mode: dev\nlimits:\n  max_concurrent_rpcs: 3\n  storage_threads: 2\n")
    assert load_settings(cfg).limits.max_concurrent_rpcs == 3
    monkeypatch.setenv("PIPVAULT_LIMITS__MAX_CONCURRENT_RPCS", "5")
    s = load_settings(cfg)
    assert (s.limits.max_concurrent_rpcs, s.limits.storage_threads) == (5, 2)
    assert load_settings(cfg, limits={"max_concurrent_rpcs": 9}).limits.max_concurrent_rpcs == 9
    cfg.write_text("- not a mapping\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(cfg)


def test_policy_validation_and_lookup() -> None:
    token = "t" * 40
    policy = parse_policy(
        {
            "principals": [
                {
                    "id": "a",
                    "roles": ["router"],
                    "workspaces": ["w"],
                    "token_sha256": hash_token(token),
                }
            ]
        }
    )
    entry = policy.by_token(token)
    assert entry is not None and entry.principal.roles == frozenset({Role.ROUTER})
    assert policy.by_token(token + "x") is None
    for bad in (
        {"principals": [{"id": "a", "roles": [], "workspaces": ["w"]}]},
        {"principals": [{"id": "a", "roles": ["root"], "workspaces": ["w"]}]},
        {
            "principals": [
                {"id": "a", "roles": ["router"], "workspaces": ["w"], "token_sha256": "abc"}
            ]
        },
        {"principals": [{"id": "a", "roles": ["router"], "workspaces": ["*", "w"]}]},
        {"principals": [{"id": "a", "roles": ["router"], "workspaces": ["w"]}] * 2},
        {"principals": [{"id": "a", "roles": ["router"], "workspaces": ["w"], "surprise": 1}]},
    ):
        with pytest.raises(PolicyError):
            parse_policy(bad)


def test_authorizer_denies_by_default() -> None:
    router = Principal("r", PrincipalType.SERVICE, frozenset({Role.ROUTER}), frozenset({"w"}))
    sign = "/pipsync.vault.v1.SigningService/SignOrder"
    assert authorize_call(router, sign, Plane.DATA).reason_required
    with pytest.raises(WrongListener):
        authorize_call(router, sign, Plane.ADMIN)
    with pytest.raises(PermissionDenied):
        authorize_call(router, "/pipsync.vault.v1.KeyService/GetKeyStatus", Plane.ADMIN)
    with pytest.raises(PermissionDenied):
        authorize_call(router, "/pipsync.vault.v1.SigningService/Unknown", Plane.DATA)
    authorize_workspace(router, "w")
    with pytest.raises(NotFound):
        authorize_workspace(router, "other")


def test_every_rpc_declares_its_role() -> None:
    from pipsync.vault.v1 import (
        audit_service_pb2,
        credential_service_pb2,
        key_service_pb2,
        signing_service_pb2,
        workspace_service_pb2,
    )

    methods = {
        f"/{svc.full_name}/{m.name}"
        for mod in (
            audit_service_pb2,
            credential_service_pb2,
            key_service_pb2,
            signing_service_pb2,
            workspace_service_pb2,
        )
        for svc in mod.DESCRIPTOR.services_by_name.values()
        for m in svc.methods
    }
    assert methods == set(RULES), "every RPC must appear in auth/rpc_roles.py and nothing else"
    for method, rule in RULES.items():
        assert rule.roles, method
        mutating = not method.rsplit("/", 1)[1].startswith(("Get", "List", "Stream", "Verify"))
        # A batch checks each item's reason (or the call's) itself: its items fail alone
        # (tests/integration/signing/test_batch_sign_orders.py).
        per_item = method.endswith(("/BatchSignOrders", "/BatchBeginRouting"))
        assert rule.reason_required == (mutating and not per_item), method
