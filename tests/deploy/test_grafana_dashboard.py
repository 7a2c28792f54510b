"""deploy/grafana/pipvault.json queries only metrics the server exports: every name in every
panel query is a sample the server's `Metrics` registry produces (counters as `_total`,
histograms as `_bucket`/`_sum`/`_count`, gauges as is), every label it groups or filters by is a
label of those metrics, and every declared metric has a panel."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from prometheus_client.metrics import MetricWrapperBase

from tests.support.k8s_manifests import REPO
from vault_server.observability.metrics import Metrics

DASHBOARD = REPO / "deploy" / "grafana" / "pipvault.json"
# Labels Prometheus adds at scrape time, and the histogram bucket label.
SCRAPE_LABELS = {"instance", "job", "le"}
METRIC_NAME = re.compile(r"\bpipvault_[a-z0-9_]+\b")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")


def _declared() -> dict[str, dict[str, set[str]]]:
    """Metric family -> {sample name -> label names}, for every metric the server declares."""
    metrics = Metrics()
    declared = [v for v in vars(metrics).values() if isinstance(v, MetricWrapperBase)]
    assert len(declared) >= 15, "Metrics declares the server's metrics as attributes"
    families: dict[str, dict[str, set[str]]] = {}
    for metric in declared:
        (family,) = metric.describe()
        labels = set(metric._labelnames)
        suffixes = {
            "counter": ["_total"],
            "histogram": ["_bucket", "_sum", "_count"],
            "gauge": [""],
        }[family.type]
        families[family.name] = {family.name + suffix: labels for suffix in suffixes}
    # cross-check against what the registry really exposes for the unlabelled metrics
    samples = {n for f in families.values() for n in f}
    exposed = {s.name for fam in metrics.registry.collect() for s in fam.samples}
    assert exposed, "the registry exposes samples"
    assert {n for n in exposed if not n.endswith("_created")} <= samples
    return families


def _exported() -> dict[str, set[str]]:
    """Sample name -> label names."""
    return {n: labels for f in _declared().values() for n, labels in f.items()}


def problems(expr: str, exported: dict[str, set[str]]) -> list[str]:
    """What is wrong with one panel query: metrics the server does not export, labels those
    metrics do not carry."""
    names = METRIC_NAME.findall(expr)
    if not names:
        return ["names no pipvault metric"]
    unknown = [n for n in names if n not in exported]
    if unknown:
        return [f"{n} is not exported by the server" for n in unknown]
    allowed = set().union(*(exported[n] for n in names)) | SCRAPE_LABELS
    used = {
        label.strip()
        for group in GROUPING.findall(expr)
        for label in group.split(",")
        if label.strip()
    } | set(MATCHER.findall(expr))
    return [f"label {label} is not on {names}" for label in sorted(used - allowed)]


def _targets(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            found.append((panel["title"], target["expr"]))
    return found


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def test_dashboard_is_a_grafana_dashboard(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] and dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "instance"} <= variables
    for panel in dashboard["panels"]:
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}, panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["targets"], f"panel {panel['title']} has no query"
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_every_query_names_only_exported_metrics_and_labels(dashboard: dict[str, Any]) -> None:
    exported = _exported()
    targets = _targets(dashboard)
    assert len(targets) >= 20
    for title, expr in targets:
        assert not problems(expr, exported), (title, expr, problems(expr, exported))


def test_every_declared_metric_has_a_panel(dashboard: dict[str, Any]) -> None:
    used = set(METRIC_NAME.findall(" ".join(expr for _, expr in _targets(dashboard))))
    for family, samples in _declared().items():
        assert used & set(samples), f"no panel shows {family}"


@pytest.mark.parametrize(
    ("expr", "complaint"),
    [
        ("sum(rate(pipvault_signature_total[5m]))", "pipvault_signature_total is not exported"),
        ("histogram_quantile(0.9, rate(pipvault_rpc_duration_seconds[5m]))", "not exported"),
        ("sum(pipvault_kms_errors)", "pipvault_kms_errors is not exported"),
        ("sum by (workspace) (rate(pipvault_signatures_total[5m]))", "label workspace"),
        ('sum(rate(pipvault_rpc_total{credential="x"}[5m]))', "label credential"),
        ("sum(rate(http_requests_total[5m]))", "names no pipvault metric"),
    ],
)
def test_the_check_rejects_what_the_server_does_not_export(expr: str, complaint: str) -> None:
    found = problems(expr, _exported())
    assert any(complaint in p for p in found), found
