"""The pipvault config and policy in each rendered overlay's ConfigMap are real pipvault settings
(loaded through vault_server.config, the server's own loader) and agree with the manifest:
socket path and group, ports, mounted file paths, the image's entrypoint."""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from tests.support.k8s_manifests import (
    OVERLAYS,
    REPO,
    SIDECAR,
    PodView,
    all_of,
    configmap,
    pod,
    render,
)
from vault_server.auth.policy import parse_policy
from vault_server.auth.principal import Role
from vault_server.config import ConfigError, Settings, load_settings

MODES = {"dev": "dev", "prod": "production"}


@pytest.fixture(autouse=True)
def _no_pipvault_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment beats the file: clear it so only the ConfigMap is judged."""
    for name in list(os.environ):
        if name.startswith("PIPVAULT_"):
            monkeypatch.delenv(name)


def _load(text: str, tmp_path: Path) -> Settings:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return load_settings(path)


def _mount_dir(view: PodView, volume: str) -> PurePosixPath:
    return PurePosixPath(view.mounts(view.sidecar)[volume]["mountPath"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_configmap_settings_load_through_the_server_settings_class(
    overlay: str, tmp_path: Path
) -> None:
    docs = render(overlay)
    data = configmap(docs, "pipvault-config")["data"]
    settings = _load(data["config.yaml"], tmp_path)
    assert settings.mode == MODES[overlay]
    # every key in the file is a setting (load_settings forbids unknown keys; proven below)
    raw = yaml.safe_load(data["config.yaml"])
    assert set(raw) <= set(Settings.model_fields)
    policy = parse_policy(yaml.safe_load(configmap(docs, "pipvault-policy")["data"]["policy.yaml"]))
    by_id = {e.principal.id: e for e in policy.entries}
    assert Role.ROUTER in by_id["router"].principal.roles
    assert Role.SECURITY in by_id["security-oncall"].principal.roles
    # a committed policy authenticates nobody: its hashes are placeholders (no known preimage)
    assert all(e.token_sha256 for e in policy.entries)


def test_a_misspelt_setting_would_be_caught(tmp_path: Path) -> None:
    data = configmap(render("prod"), "pipvault-config")["data"]
    broken = data["config.yaml"].replace("readiness_interval_s:", "readyness_interval_s:")
    assert broken != data["config.yaml"]
    with pytest.raises(ConfigError, match="readyness_interval_s"):
        _load(broken, tmp_path)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_agree_with_the_pod(overlay: str, tmp_path: Path) -> None:
    docs = render(overlay)
    view = pod(docs)
    data = configmap(docs, "pipvault-config")["data"]
    settings = _load(data["config.yaml"], tmp_path)
    listen = settings.listen

    # the socket lives in the shared in-memory volume, the router is pointed at it, and the
    # socket's group is the Pod's fsGroup (a supplementary group of every container)
    assert listen.data_socket is not None
    socket = PurePosixPath(str(listen.data_socket))
    assert socket.parent == _mount_dir(view, "pipvault-socket")
    app_env = {e["name"]: e.get("value") for e in view.app.get("env", [])}
    assert app_env["PIPVAULT_ADDR"] == f"unix://{socket}"
    assert listen.socket_group == view.spec["securityContext"]["fsGroup"]
    assert listen.socket_mode == 0o660
    assert listen.data_address is None, "the data plane is the pod-local socket only"

    # the probes' port is the health listener; metrics on their own port; admin on loopback
    ports = {p["name"]: p["containerPort"] for p in view.sidecar["ports"]}
    assert listen.health_address == f"0.0.0.0:{ports['health']}"
    assert listen.metrics_address == f"0.0.0.0:{ports['metrics']}"
    assert listen.admin_address is not None and listen.admin_address.startswith("127.0.0.1:")

    # the command reads the mounted config, and the policy is the mounted policy
    config_dir = _mount_dir(view, "pipvault-config")
    policy_dir = _mount_dir(view, "pipvault-policy")
    assert config_dir != policy_dir
    command = view.sidecar["command"]
    assert command[:2] == ["pipvault", "serve"]
    assert command[command.index("--config") + 1] == str(config_dir / "config.yaml")
    assert PurePosixPath(str(settings.policy_file)) == policy_dir / "policy.yaml"

    # the drain fits inside the Pod's termination grace period
    assert listen.grace_period_s < view.spec["terminationGracePeriodSeconds"]

    if overlay == "dev":
        home = PurePosixPath(str(settings.home))
        assert home == _mount_dir(view, "pipvault-home")
        assert settings.resolved_database_url().startswith(f"sqlite:///{home}/")


def test_prod_key_files_come_from_the_secret_copy_and_the_database_url_has_no_password(
    tmp_path: Path,
) -> None:
    docs = render("prod")
    view = pod(docs)
    settings = _load(configmap(docs, "pipvault-config")["data"]["config.yaml"], tmp_path)
    keys_dir = _mount_dir(view, "pipvault-key-files")

    url = urlsplit(settings.database_url)
    assert url.scheme == "postgresql"
    assert url.password is None, "the database URL is in a ConfigMap: no password"
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query["sslmode"] == "verify-full"
    files = [
        str(settings.server_key_file),
        str(settings.audit.checkpoint_key_file),
        str(settings.keys.transit_ca_file),
        query["sslrootcert"],
        query["sslcert"],
        query["sslkey"],
    ]
    # every file pipvault reads is in the in-memory copy, and the copy step copies exactly them
    helper = view.container(f"{SIDECAR}-key-files")
    command = helper["command"]
    assert command[:3] == ["install", "-m", "0400"]
    assert command[command.index("-t") + 1] == str(keys_dir)
    copied = {PurePosixPath(p).name for p in command[command.index("-t") + 2 :]}
    secret_dir = PurePosixPath(view.mounts(helper)["pipvault-keys-secret"]["mountPath"])
    assert {PurePosixPath(p).parent for p in command[command.index("-t") + 2 :]} == {secret_dir}
    for path in files:
        assert PurePosixPath(path).parent == keys_dir, path
    assert {PurePosixPath(p).name for p in files} == copied

    # the KMS and PostgreSQL the config names are the ones the NetworkPolicy lets through
    egress = {
        (peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"], port["port"])
        for policy in all_of(docs, "NetworkPolicy")
        for rule in policy["spec"].get("egress", [])
        for peer in rule["to"]
        if "namespaceSelector" in peer
        and peer["namespaceSelector"]["matchLabels"].get("kubernetes.io/metadata.name")
        != "kube-system"
        for port in rule["ports"]
    }
    transit = urlsplit(str(settings.keys.transit_address))
    assert transit.scheme == "https"
    assert (transit.hostname or "").split(".")[1] == "openbao"
    assert ("openbao", transit.port) in egress
    assert url.hostname is not None and (url.hostname.split(".")[1], url.port) in egress
    assert settings.keys.primary in settings.keys.providers
    assert settings.audit.checkpoint_sink in ("stdout", "both")

    # the transit token and the pager key are the env vars the settings name
    env = {e["name"] for e in view.sidecar.get("env", [])}
    assert {settings.keys.transit_token_env, settings.paging.routing_key_env} <= env


def test_the_image_entrypoint_reads_the_config_the_manifests_mount() -> None:
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    match = re.search(r"^ENTRYPOINT (\[.*\])$", dockerfile, re.M)
    assert match is not None
    entrypoint = yaml.safe_load(match.group(1))
    for overlay in OVERLAYS:
        assert pod(render(overlay)).sidecar["command"] == entrypoint
