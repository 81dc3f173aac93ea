"""Shared by the monitoring tests: the Prometheus tools, the metric names a PromQL expression
uses, the names the app really exposes, and where prometheus.yml looks for its targets."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
PROMQL_WORDS = {
    "by", "without", "and", "or", "unless", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "le", "inf", "nan",
}  # fmt: skip


def tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed (Debian: make system-packages)"
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)


def metric_names(expr: str) -> set[str]:
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # grouping labels
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r'"[^"]*"', "", expr)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        name = match.group(0)
        rest = expr[match.end() :].lstrip()
        if rest.startswith("(") or name.lower() in PROMQL_WORDS:
            continue  # a function or a keyword
        names.add(name)
    return names


def exposed_metrics(client) -> set[str]:
    """Every metric name in a real scrape of /metrics (histograms with their series)."""
    client.get("/health/live")  # so that request metrics have samples
    scrape = client.get("/metrics").content.decode()
    exposed = set()
    for line in scrape.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()[:4]
            exposed.add(name)
            if kind == "histogram":
                exposed |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
    return exposed


def external_metrics() -> set[str]:
    return {
        line.strip()
        for line in (PROM / "external_metrics.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }


def prometheus_config(path: Path | None = None) -> dict:
    import yaml

    return yaml.safe_load((path or PROM / "prometheus.yml").read_text())


def scrape_targets(config: dict) -> list[tuple[str, str, str, int]]:
    """(job, how it is found: "static" or "dns", host, port) of every target prometheus.yml
    names, the alertmanagers included (as job "alertmanager")."""
    found = []

    def static(job: str, configs: list) -> None:
        for group in configs or []:
            for target in group.get("targets") or []:
                host, _, port = target.rpartition(":")
                found.append((job, "static", host, int(port)))

    for job in config.get("scrape_configs") or []:
        static(job["job_name"], job.get("static_configs"))
        for dns in job.get("dns_sd_configs") or []:
            for name in dns.get("names") or []:
                found.append((job["job_name"], "dns", name, int(dns["port"])))
    for manager in (config.get("alerting") or {}).get("alertmanagers") or []:
        static("alertmanager", manager.get("static_configs"))
    return found


def relabel(labels: dict[str, str], configs: list[dict]) -> dict[str, str] | None:
    """Prometheus's relabelling for the actions the config uses (replace, keep, drop): the
    target's labels after it, or None for a dropped target."""
    labels = dict(labels)
    for config in configs or []:
        action = config.get("action", "replace")
        value = config.get("separator", ";").join(
            labels.get(name, "") for name in config.get("source_labels") or []
        )
        match = re.fullmatch(config.get("regex", "(.*)"), value)  # anchored, as in Prometheus
        if action == "keep" and not match:
            return None
        if action == "drop" and match:
            return None
        if action == "replace" and match:
            replacement = config.get("replacement", "$1")
            template = re.sub(r"\$\{?(\w+)\}?", r"\\g<\1>", replacement)  # $1 -> \g<1>
            labels[config["target_label"]] = match.expand(template)
        elif action not in {"replace", "keep", "drop"}:
            raise NotImplementedError(action)
    return labels
