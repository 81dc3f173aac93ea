"""Shared by the monitoring tests: the Prometheus tools, the metric names a PromQL expression
uses, and the names the app really exposes."""

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
