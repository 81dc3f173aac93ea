"""The monitoring files, checked by Prometheus's own tools (Debian's `prometheus` package gives
promtool; `prometheus-alertmanager` gives amtool), and every metric the alerts use checked
against a real scrape of the app's /metrics or the documented exporters' lists."""

import pytest

from tests.ops.promcheck import (
    PROM,
    ROOT,
    exposed_metrics,
    external_metrics,
    metric_names,
    run,
    tool,
)


def test_prometheus_config_and_rules_are_valid():
    promtool = tool("promtool")
    checked = run(promtool, "check", "config", str(PROM / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rules = run(promtool, "check", "rules", str(PROM / "alerts.yml"))
    assert rules.returncode == 0 and "13 rules found" in rules.stdout, rules.stdout + rules.stderr


def test_alert_unit_tests_pass():
    result = run(tool("promtool"), "test", "rules", str(PROM / "tests" / "alerts_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_rule_is_caught(tmp_path):
    broken = (PROM / "alerts.yml").read_text().replace("for: 10m", "for: ten minutes", 1)
    (tmp_path / "alerts.yml").write_text(broken)
    result = run(tool("promtool"), "check", "rules", str(tmp_path / "alerts.yml"))
    assert result.returncode != 0


def test_alertmanager_config_is_valid():
    result = run(tool("amtool"), "check-config", str(ROOT / "deploy/alertmanager/alertmanager.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.django_db
def test_every_metric_in_the_alerts_exists(client):
    import yaml

    exposed = exposed_metrics(client)
    external = external_metrics()
    used = set()
    for group in yaml.safe_load((PROM / "alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            used |= metric_names(rule["expr"])
    assert used, "no metric found in the alert rules"
    missing = used - exposed - external
    assert not missing, f"alerts use metrics nobody exposes: {sorted(missing)}"
    assert {"sii_requests_total", "dte_caf_folios_left", "ops_beat_heartbeat_age_seconds"} <= used


def test_the_metric_name_extraction():
    expr = 'sum by (le) (rate(sii_request_seconds_bucket{operation="x"}[5m])) > 5 and up == 0'
    assert metric_names(expr) == {"sii_request_seconds_bucket", "up"}


def test_the_beat_schedule_names_registered_tasks(settings):
    from ops.celery import app

    app.loader.import_default_modules()
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert entry["task"] in app.tasks, name


def test_every_runbook_an_alert_names_exists():
    import yaml

    for group in yaml.safe_load((PROM / "alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            runbook = rule.get("annotations", {}).get("runbook")
            if runbook:
                assert (ROOT / runbook).is_file(), (rule["alert"], runbook)
