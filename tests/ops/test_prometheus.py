"""The monitoring files, checked by Prometheus's own tools (Debian's `prometheus` package gives
promtool; `prometheus-alertmanager` gives amtool), and every metric the alerts use checked
against a real scrape of the app's /metrics or the documented exporters' lists."""

import json
import re

import pytest
import yaml

from tests.ops.promcheck import (
    PROM,
    ROOT,
    exposed_metrics,
    external_metrics,
    metric_names,
    prometheus_config,
    relabel,
    run,
    tool,
)

COMPOSE_SERVICES = list(yaml.safe_load((ROOT / "compose.yaml").read_text())["services"])
# Every Celery worker service of compose.yaml, both colours: worker-<colour> (sii, celery),
# worker-<colour>-aux (pdf, email, ai), worker-<colour>-bulk (bulk), and any later one.
WORKER_SERVICES = {s for s in COMPOSE_SERVICES if re.fullmatch(r"worker-(blue|green)(-\w+)?", s)}
# The services that scale (the autoscaler, or `--scale` by hand), and the port each serves
# /metrics on (compose.yaml).
SCALED_JOBS = {
    "web": ({"web-blue", "web-green"}, 8000),
    "worker": (WORKER_SERVICES, 9101),
}


def test_prometheus_config_and_rules_are_valid(tmp_path):
    """Checked as it stands in the container: the web job's bearer token file is the Compose
    secret /run/secrets/metrics_token, which promtool wants to find."""
    promtool = tool("promtool")
    secret = "/run/secrets/metrics_token"
    config = (PROM / "prometheus.yml").read_text()
    assert f"credentials_file: {secret}" in config
    (tmp_path / "metrics_token").write_text("token")
    (tmp_path / "alerts.yml").write_text((PROM / "alerts.yml").read_text())
    here = tmp_path / "prometheus.yml"
    here.write_text(config.replace(secret, str(tmp_path / "metrics_token")))
    checked = run(promtool, "check", "config", str(here))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rules = run(promtool, "check", "rules", str(PROM / "alerts.yml"))
    assert rules.returncode == 0 and "16 rules found" in rules.stdout, rules.stdout + rules.stderr


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


def test_a_config_error_is_caught(tmp_path):
    text = (PROM / "prometheus.yml").read_text()
    assert "type: A" in text
    (tmp_path / "prometheus.yml").write_text(text.replace("type: A", "type: CNAME", 1))
    (tmp_path / "alerts.yml").write_text((PROM / "alerts.yml").read_text())
    result = run(tool("promtool"), "check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode != 0


def jobs() -> dict[str, dict]:
    return {job["job_name"]: job for job in prometheus_config()["scrape_configs"]}


def test_scaled_services_are_discovered_by_dns_so_every_replica_is_scraped():
    for name, (services, port) in SCALED_JOBS.items():
        job = jobs()[name]
        assert not job.get("static_configs"), f"{name}: a static target is one replica"
        (dns,) = job["dns_sd_configs"]
        assert dns.get("type", "SRV") == "A", name  # Docker's DNS has one A record per replica
        assert set(dns["names"]) == services and dns["port"] == port, name
        refresh = re.fullmatch(r"(\d+)s", dns.get("refresh_interval", "30s"))
        assert refresh and int(refresh.group(1)) <= 30, name


def colour_of(job: dict, name: str) -> str | None:
    labels = relabel({"__meta_dns_name": name, "job": job["job_name"]}, job["relabel_configs"])
    return None if labels is None else labels.get("colour")


def test_the_colour_label_comes_from_the_name_a_replica_was_found_under():
    for name, (services, _) in SCALED_JOBS.items():
        for service in services:
            colour = re.search(r"-(blue|green)(-|$)", service).group(1)
            assert colour_of(jobs()[name], service) == colour, service
            assert colour_of(jobs()[name], f"{service}.") == colour, service  # Docker's FQDN
        # Not any name: a third service under the job gets no colour.
        assert colour_of(jobs()[name], f"{name}-purple") is None


def test_every_worker_service_of_compose_yaml_is_scraped():
    """The AI and e-mail metrics come from the -aux workers, receiving's from -bulk: a worker
    service of compose.yaml missing from the worker job would leave its metrics unscraped and
    CeleryWorkerDown blind to it."""
    assert {"worker-blue-aux", "worker-green-aux", "worker-blue-bulk", "worker-green-bulk"} <= (
        WORKER_SERVICES
    )
    (dns,) = jobs()["worker"]["dns_sd_configs"]
    assert sorted(dns["names"]) == sorted(WORKER_SERVICES)


def service_of(name: str) -> str | None:
    labels = relabel(
        {"__meta_dns_name": name, "job": "worker"}, jobs()["worker"]["relabel_configs"]
    )
    return labels.get("service") or None


def test_the_worker_service_label_is_the_compose_service_without_its_colour():
    for name in WORKER_SERVICES:
        expected = re.sub(r"-(blue|green)", "", name, count=1)
        assert service_of(name) == expected and service_of(f"{name}.") == expected, name
    assert service_of("worker-blue-aux") == "worker-aux"
    assert service_of("worker-green") == "worker"
    assert service_of("web-blue") is None


def test_celery_worker_down_covers_every_worker_service():
    """CeleryWorkerDown sees a worker service with no replica answering, stopped ones too (a
    stopped service has no target, so no `up` == 0: one absent() per service)."""
    rules = {
        rule["alert"]: rule
        for group in yaml.safe_load((PROM / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    }
    expr = rules["CeleryWorkerDown"]["expr"]
    assert 'sum by (service) (up{job="worker"}) == 0' in expr
    absent = set(re.findall(r'absent\(up\{job="worker", service="([^"]+)"\}\)', expr))
    assert absent == {service_of(name) for name in WORKER_SERVICES}
    assert {"worker", "worker-aux", "worker-bulk"} <= absent
    assert "{{ $labels.service }}" in rules["CeleryWorkerDown"]["annotations"]["summary"]


def selected_jobs(expr: str) -> set[str]:
    return set(re.findall(r"""\bjob\s*=\s*["']([^"']+)["']""", expr))


def test_the_labels_alerts_and_dashboards_rely_on_are_set():
    import yaml

    configured = jobs()
    colour_jobs = {
        name
        for name, job in configured.items()
        if job.get("dns_sd_configs")
        and all(
            colour_of(job, service) for dns in job["dns_sd_configs"] for service in dns["names"]
        )
    }
    exprs = []
    for group in yaml.safe_load((PROM / "alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            exprs.append(rule["expr"])
            if "colour" in json.dumps([rule.get("annotations"), rule.get("labels")]):
                # {{ $labels.colour }} needs every series of the expression to carry it.
                assert selected_jobs(rule["expr"]), f"{rule['alert']} reads colour of any job"
                assert selected_jobs(rule["expr"]) <= colour_jobs, rule["alert"]
    for path in sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            exprs += [target["expr"] for target in panel["targets"]]
    for expr in exprs:
        assert selected_jobs(expr) <= set(configured), expr
    assert colour_jobs >= {"web", "worker"}


def test_the_alert_unit_tests_cover_the_worker_alerts():
    text = (PROM / "tests" / "alerts_test.yml").read_text()
    for alert in ("CeleryWorkerDown", "WorkerTargetDown", "CeleryQueueWithoutWorker"):
        assert f"alertname: {alert}" in text, alert


def test_the_deploy_gates_queries_give_numbers_a_clean_colour_included(tmp_path):
    """deploy/bin/deploy's exact PromQL (5xx ratio, p95) evaluated by promtool: a colour that has
    never answered a 5xx has a ratio of 0, not "no data" (which would stop every deploy)."""
    from tests.ops.app_colours import load_deploy_module

    deploy = load_deploy_module("deploy")

    class Capture:
        def __init__(self):
            self.queries = []

        def query(self, promql):
            self.queries.append(promql)

    captured = Capture()
    deploy.colour_metrics(captured, "green")
    errors, p95 = captured.queries
    gates = [{"record": "gate:errors", "expr": errors}, {"record": "gate:p95", "expr": p95}]
    (tmp_path / "gates.yml").write_text(json.dumps({"groups": [{"name": "g", "rules": gates}]}))
    bucket = 'traefik_service_request_duration_seconds_bucket{service="app-green@file",le="%s"}'
    total = 'traefik_service_requests_total{service="app-green@file",code="%s"}'
    clean = [
        {"series": total % "200", "values": "0+60x10"},
        {"series": bucket % "0.1", "values": "0+57x10"},
        {"series": bucket % "0.5", "values": "0+60x10"},
        {"series": bucket % "+Inf", "values": "0+60x10"},
    ]
    failing = [*clean, {"series": total % "500", "values": "0+6x10"}]

    def sample(record: str, value: float) -> dict:
        return {"expr": record, "eval_time": "5m",
                "exp_samples": [{"labels": record, "value": value}]}  # fmt: skip

    tests = {
        "rule_files": ["gates.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {"interval": "1m", "input_series": clean,
             "promql_expr_test": [sample("gate:errors", 0), sample("gate:p95", 0.1)]},
            {"interval": "1m", "input_series": failing,
             "promql_expr_test": [sample("gate:errors", 6 / 66)]},
        ],
    }  # fmt: skip
    (tmp_path / "gates_test.yml").write_text(json.dumps(tests))
    result = run(tool("promtool"), "test", "rules", str(tmp_path / "gates_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
