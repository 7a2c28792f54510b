"""The sidecar-specific properties of deploy/k8s, asserted on the output of `kubectl kustomize`
for each overlay (never on the source YAML, so patches and generators are included)."""

from __future__ import annotations

import ipaddress

import pytest

from tests.support.k8s_manifests import (
    APP,
    OVERLAYS,
    REPO,
    SIDECAR,
    Obj,
    PodView,
    all_of,
    configmap,
    one,
    pod,
    render,
)
from vault_server.rpc.server import LIVENESS_SERVICE

PRIVATE_V4 = [
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10")
]
# Volume types Pod Security Standards "restricted" allows.
PSS_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def _is_pipvault_side(name: str) -> bool:
    """The sidecar and its helper init containers; never the router."""
    return name == SIDECAR or name.startswith(f"{SIDECAR}-")


@pytest.fixture(params=OVERLAYS)
def docs(request: pytest.FixtureRequest) -> list[Obj]:
    return render(request.param)


@pytest.fixture(params=OVERLAYS)
def view(request: pytest.FixtureRequest) -> PodView:
    return pod(render(request.param))


def test_pipvault_is_a_native_sidecar(view: PodView) -> None:
    sidecar = view.sidecar
    assert sidecar in view.init_containers, "pipvault must be an initContainers entry"
    assert sidecar.get("restartPolicy") == "Always"
    assert SIDECAR not in [c["name"] for c in view.containers]
    assert [c["name"] for c in view.containers] == [APP]
    # Helper init containers run to completion BEFORE the sidecar starts (order matters).
    names = [c["name"] for c in view.init_containers]
    for helper in view.init_containers[: names.index(SIDECAR)]:
        assert "restartPolicy" not in helper, helper["name"]
    for later in view.init_containers[names.index(SIDECAR) + 1 :]:
        assert later.get("restartPolicy") == "Always", later["name"]


def test_data_socket_is_in_memory_and_shared_read_only_with_the_router(view: PodView) -> None:
    sidecar_mounts = view.mounts(view.sidecar)
    app_mounts = view.mounts(view.app)
    shared = set(sidecar_mounts) & set(app_mounts)
    assert shared == {"pipvault-socket"}, f"only the socket volume is shared, got {shared}"
    volume = view.volume("pipvault-socket")
    assert volume["emptyDir"]["medium"] == "Memory"
    assert volume["emptyDir"].get("sizeLimit"), "an in-memory volume needs a sizeLimit"
    assert (
        sidecar_mounts["pipvault-socket"]["mountPath"] == app_mounts["pipvault-socket"]["mountPath"]
    )
    assert app_mounts["pipvault-socket"].get("readOnly") is True
    assert not sidecar_mounts["pipvault-socket"].get("readOnly", False)


def test_probes_are_grpc_on_the_health_port_only(view: PodView) -> None:
    sidecar = view.sidecar
    ports = {p["name"]: p["containerPort"] for p in sidecar["ports"]}
    health = ports["health"]
    assert health != ports["metrics"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        spec = sidecar[probe]
        assert set(spec) & {"grpc", "httpGet", "tcpSocket", "exec"} == {"grpc"}, probe
        assert spec["grpc"]["port"] == health, probe
    # startup and readiness ask the vault's overall status (service ""); liveness asks the
    # "liveness" service, which stays SERVING through storage/KMS outages (no restart loops)
    assert sidecar["startupProbe"]["grpc"].get("service", "") == ""
    assert sidecar["readinessProbe"]["grpc"].get("service", "") == ""
    assert sidecar["livenessProbe"]["grpc"]["service"] == LIVENESS_SERVICE
    # readiness reacts before liveness would restart the sidecar
    ready, live = sidecar["readinessProbe"], sidecar["livenessProbe"]
    assert ready["periodSeconds"] * ready["failureThreshold"] < (
        live["periodSeconds"] * live["failureThreshold"]
    )


def test_no_service_account_token_in_the_router(docs: list[Obj]) -> None:
    view = pod(docs)
    assert view.spec["automountServiceAccountToken"] is False
    account = one(docs, "ServiceAccount", view.spec["serviceAccountName"])
    assert account["metadata"]["name"] != "default"
    assert account.get("automountServiceAccountToken") is False
    for name, mount in view.mounts(view.app).items():
        assert not mount["mountPath"].startswith("/var/run/secrets"), name
        volume = view.volume(name)
        assert "secret" not in volume and "projected" not in volume, name


def test_projected_token_has_its_own_audience_and_only_the_sidecar_mounts_it() -> None:
    view = pod(render("prod"))
    token_volumes = [
        v
        for v in view.spec["volumes"]
        if any("serviceAccountToken" in s for s in v.get("projected", {}).get("sources", []))
    ]
    assert len(token_volumes) == 1
    volume = token_volumes[0]
    (source,) = volume["projected"]["sources"]
    token = source["serviceAccountToken"]
    assert token["audience"] not in ("", "https://kubernetes.default.svc", "kubernetes")
    assert token["expirationSeconds"] <= 3600
    assert view.containers_mounting(volume["name"]) == [SIDECAR]
    assert view.mounts(view.sidecar)[volume["name"]].get("readOnly") is True


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_reach_only_the_pipvault_side(overlay: str) -> None:
    view = pod(render(overlay))
    secret_volumes = [
        v["name"]
        for v in view.spec["volumes"]
        if "secret" in v
        or any(
            set(s) & {"secret", "serviceAccountToken"}
            for s in v.get("projected", {}).get("sources", [])
        )
    ]
    for name in secret_volumes:
        users = view.containers_mounting(name)
        assert users, f"secret volume {name} is mounted by nobody"
        assert all(_is_pipvault_side(u) for u in users), f"{name} mounted by {users}"
    for container in view.every_container:
        env_secrets = [
            e["name"] for e in container.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})
        ] + [e for e in container.get("envFrom", []) if "secretRef" in e]
        if env_secrets:
            assert _is_pipvault_side(container["name"]), (container["name"], env_secrets)
    # the in-memory copy of the key files is as private as the Secret it came from
    for volume in view.spec["volumes"]:
        if volume["name"] == "pipvault-key-files":
            assert volume["emptyDir"]["medium"] == "Memory"
            assert APP not in view.containers_mounting("pipvault-key-files")
    if overlay == "prod":
        assert secret_volumes, "prod mounts its key files from a Secret"
        assert any("secretKeyRef" in e.get("valueFrom", {}) for e in view.sidecar.get("env", [])), (
            "prod gives the sidecar its transit token from a Secret"
        )


def _egress_allowances(docs: list[Obj]) -> set[tuple[str, int]]:
    allowed = set()
    for policy in all_of(docs, "NetworkPolicy"):
        for rule in policy["spec"].get("egress", []):
            for port in rule.get("ports", []):
                allowed.add((port["protocol"], port["port"]))
    return allowed


def test_network_policy_default_deny_then_only_the_needed_egress(docs: list[Obj]) -> None:
    policies = all_of(docs, "NetworkPolicy")
    deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {}
        and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert len(deny) == 1, "one default-deny policy for every Pod, both directions"
    labels = one(docs, "Deployment", "router")["spec"]["template"]["metadata"]["labels"]
    for policy in policies:
        if policy is deny[0]:
            continue
        selector = policy["spec"]["podSelector"]["matchLabels"]
        assert selector.items() <= labels.items(), policy["metadata"]["name"]
        for rule in policy["spec"].get("egress", []) + policy["spec"].get("ingress", []):
            assert rule.get("ports"), f"{policy['metadata']['name']}: a rule without ports"
            peers = rule.get("to", []) + rule.get("from", [])
            assert peers, f"{policy['metadata']['name']}: a rule without peers allows everyone"

    prod = "router-allow-postgresql" in {p["metadata"]["name"] for p in policies}
    expected = {("UDP", 53), ("TCP", 53), ("TCP", 443)}
    if prod:
        expected |= {("TCP", 5432), ("TCP", 8200)}
    assert _egress_allowances(docs) == expected

    # DNS only to kube-dns; port 443 only to public addresses (no cluster, private or metadata)
    for policy in policies:
        for rule in policy["spec"].get("egress", []):
            ports = {p["port"] for p in rule["ports"]}
            for peer in rule["to"]:
                if 53 in ports:
                    assert peer["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
                if "ipBlock" in peer:
                    assert ports == {443}
                    block = peer["ipBlock"]
                    excepted = {ipaddress.ip_network(e) for e in block["except"]}
                    assert set(PRIVATE_V4) <= excepted
                else:
                    assert "namespaceSelector" in peer and "podSelector" in peer

    ingress_ports = {
        (p["protocol"], p["port"])
        for policy in policies
        for rule in policy["spec"].get("ingress", [])
        for p in rule["ports"]
    }
    metrics = {p["containerPort"] for p in pod(docs).sidecar["ports"] if p["name"] == "metrics"}
    assert ingress_ports == {("TCP", port) for port in metrics}


def test_pod_security_standard_restricted(docs: list[Obj]) -> None:
    namespace = one(docs, "Namespace")
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    for d in docs:
        if d["kind"] != "Namespace":
            assert d["metadata"]["namespace"] == namespace["metadata"]["name"], d["kind"]
    view = pod(docs)
    spec = view.spec
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        assert not spec.get(host, False)
    pod_ctx = spec["securityContext"]
    assert pod_ctx["runAsNonRoot"] is True
    assert pod_ctx["seccompProfile"]["type"] == "RuntimeDefault"
    for volume in spec["volumes"]:
        kinds = set(volume) - {"name"}
        assert kinds <= PSS_VOLUME_TYPES, (volume["name"], kinds)
    for container in view.every_container:
        ctx = container["securityContext"]
        name = container["name"]
        assert ctx["allowPrivilegeEscalation"] is False, name
        assert ctx["readOnlyRootFilesystem"] is True, name
        assert ctx["runAsNonRoot"] is True, name
        assert ctx.get("runAsUser", pod_ctx["runAsUser"]) != 0, name
        assert ctx["capabilities"]["drop"] == ["ALL"], name
        assert not ctx["capabilities"].get("add"), name
        assert not ctx.get("privileged", False), name
        assert ctx["seccompProfile"]["type"] == "RuntimeDefault", name
        for kind in ("requests", "limits"):
            assert set(container["resources"][kind]) >= {"cpu", "memory"}, (name, kind)
        # with a read-only root filesystem, /tmp must be a volume (the image sets TMPDIR=/tmp)
        if name in (SIDECAR, APP):
            assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}, name


def test_config_and_policy_configmaps_only_the_sidecar_mounts(
    docs: list[Obj],
) -> None:
    view = pod(docs)
    config = configmap(docs, "pipvault-config")
    policy = configmap(docs, "pipvault-policy")
    assert set(config["data"]) == {"config.yaml"}
    assert set(policy["data"]) == {"policy.yaml"}
    # settings changes roll the Pods (hashed name); policy edits reach running Pods (fixed name)
    assert config["metadata"]["name"] != "pipvault-config"
    assert policy["metadata"]["name"] == "pipvault-policy"
    for cm in (config, policy):
        volume = [
            v
            for v in view.spec["volumes"]
            if v.get("configMap", {}).get("name") == cm["metadata"]["name"]
        ]
        assert len(volume) == 1, cm["metadata"]["name"]
        name = volume[0]["name"]
        assert view.containers_mounting(name) == [SIDECAR]
        mount = view.mounts(view.sidecar)[name]
        assert mount["readOnly"] is True
        assert "subPath" not in mount, "subPath mounts never see ConfigMap updates"


def test_no_secret_material_is_committed_or_rendered(docs: list[Obj]) -> None:
    """Secrets are created out of band (docs/operations.md); the manifests only reference them."""
    assert not all_of(docs, "Secret")
    for d in docs:
        for value in (d.get("data") or {}).values():
            assert "-----BEGIN" not in value
    deploy = REPO / "deploy"
    for path in deploy.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert "PRIVATE KEY-----" not in text, path
            assert "-----BEGIN" not in text, path
