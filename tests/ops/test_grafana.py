"""The Grafana dashboards: built from deploy/grafana/build.py and up to date, every panel's
PromQL valid for promtool, and every metric it reads exposed by the app or a listed exporter."""

import json
import re
import subprocess
import sys

import pytest
import yaml

from tests.ops.promcheck import ROOT, exposed_metrics, external_metrics, metric_names, run, tool

GRAFANA = ROOT / "deploy" / "grafana"


def panel_queries() -> list[tuple[str, str]]:
    queries = []
    for path in sorted((GRAFANA / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                # Grafana's variables, as Grafana would fill them in
                expr = target["expr"].replace("$__rate_interval", "5m")
                queries.append((f"{path.stem}: {panel['title']}", re.sub(r"\$\w+", "x", expr)))
    return queries


def test_the_dashboards_are_built_from_their_spec():
    result = subprocess.run(
        [sys.executable, str(GRAFANA / "build.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout
    assert {p.stem for p in (GRAFANA / "dashboards").glob("*.json")} == {
        "system",
        "web",
        "dte",
        "ai",
        "database",
    }


def test_every_panel_query_is_valid_promql(tmp_path):
    rules = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [
                    {"record": f"dashboard_query_{n}", "expr": expr}
                    for n, (_, expr) in enumerate(panel_queries())
                ],
            }
        ]
    }
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump(rules, allow_unicode=True))
    result = run(tool("promtool"), "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.django_db
def test_every_panel_reads_metrics_that_exist(client):
    known = exposed_metrics(client) | external_metrics()
    for where, expr in panel_queries():
        missing = metric_names(expr) - known
        assert not missing, f"{where}: {sorted(missing)}"
