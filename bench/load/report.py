"""Turn locust's CSV stats and the database's counts into the suite's table, verdicts, Markdown
and JSON."""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.load.scenarios import Scenario


@dataclass
class Row:
    scenario: str
    name: str  # "<role>: <task>" or "Aggregated"
    requests: int
    failures: int
    rps: float
    p50: float
    p95: float
    p99: float
    max: float
    verdict: str = "—"
    problems: list[str] = field(default_factory=list)

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


@dataclass
class Issuing:
    issued: int  # Dte rows created during the run
    docs_per_min: float  # in the steady part (after the ramp)
    accepted_in_60s: int  # accepted (with or without objections) within 60 s of the end
    rejected: int
    other: dict[str, int]  # status -> count at the end of the wait, for those not accepted
    all_accepted_after_s: float | None  # seconds after the end when the last one was accepted
    folios: str  # "1201–4388, consecutive" or what is wrong
    folios_ok: bool
    cafs_used: int


@dataclass
class Result:
    scenario: str
    description: str
    users: int
    duration_s: float
    rows: list[Row]
    issuing: Issuing | None
    checks: list[tuple[str, bool]]  # (what, passed): the scenario-level verdicts
    cpu: dict[str, float]  # process group -> % of one core over the run
    saturation: str = ""
    drift: str = ""
    failures: list[tuple[str, str, int]] = field(default_factory=list)  # name, error, count
    settings: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # observations without a verdict
    profile: dict[str, list[str]] = field(default_factory=dict)  # process -> summary lines

    @property
    def passed(self) -> bool:
        return all(r.verdict != "FAIL" for r in self.rows) and all(ok for _, ok in self.checks)


def _num(text: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return 0.0
    return value if math.isfinite(value) else 0.0


def read_stats(prefix: Path, scenario: str) -> list[Row]:
    path = Path(f"{prefix}_stats.csv")
    if not path.exists():
        return []
    rows = []
    with path.open(newline="") as handle:
        for rec in csv.DictReader(handle):
            rows.append(
                Row(
                    scenario=scenario,
                    name=rec["Name"],
                    requests=int(_num(rec["Request Count"])),
                    failures=int(_num(rec["Failure Count"])),
                    rps=_num(rec["Requests/s"]),
                    p50=_num(rec["50%"]),
                    p95=_num(rec["95%"]),
                    p99=_num(rec["99%"]),
                    max=_num(rec["Max Response Time"]),
                )
            )
    # Roles in order, the aggregate last.
    rows.sort(key=lambda r: (r.name == "Aggregated", r.name))
    return rows


def read_failures(prefix: Path) -> list[tuple[str, str, int]]:
    path = Path(f"{prefix}_failures.csv")
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return [
            (rec["Name"], rec["Error"], int(_num(rec["Occurrences"])))
            for rec in csv.DictReader(handle)
        ]


def judge(rows: list[Row], scenario: Scenario) -> None:
    for row in rows:
        applicable = [t for t in scenario.thresholds if t.applies(row.name)]
        if not applicable:
            continue
        for t in applicable:
            for label, limit, value in (
                ("p50", t.p50, row.p50),
                ("p95", t.p95, row.p95),
                ("p99", t.p99, row.p99),
            ):
                if limit is not None and value >= limit:
                    row.problems.append(f"{label} {value:.0f} ≥ {limit:g} ms")
            if t.errors is not None and row.error_rate > t.errors:
                row.problems.append(f"errors {row.error_rate:.2%} > {t.errors:.1%}")
        row.verdict = "FAIL" if row.problems else "pass"


def _aggregated_history(history: Path) -> list[tuple[int, float, float]]:
    """Locust's per-second history of all requests: (timestamp, req/s, rolling p95); empty
    when it wrote none."""
    path = Path(f"{history}_stats_history.csv")
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return [
            (int(_num(rec["Timestamp"])), _num(rec["Requests/s"]), _num(rec["95%"]))
            for rec in csv.DictReader(handle)
            if rec["Name"] == "Aggregated"
        ]


def saturation(history: Path, scenario: Scenario) -> str:
    """Per stage of a stepped run, the aggregated req/s and p95 over its last 15 s; then where
    throughput peaked, the first stage after which it grew by less than half of what the added
    users offered, and the first stage whose p95 passed 1 s."""
    samples = _aggregated_history(history)
    if not samples:
        return "no history written"
    t0 = samples[0][0]
    steps = []
    start = 0.0
    for until, users, _ in scenario.stages:
        window = [s for s in samples if max(start, until - 15) <= s[0] - t0 < until]
        if window:
            rps = sum(s[1] for s in window) / len(window)
            p95 = max(s[2] for s in window)
            steps.append((users, rps, p95))
        start = until
    if not steps:
        return "no complete stage"
    lines = [" → ".join(f"{u} users {r:.0f} req/s p95 {p:.0f} ms" for u, r, p in steps)]
    peak = max(steps, key=lambda step: step[1])
    found = [f"peak {peak[1]:.0f} req/s at {peak[0]} users"]
    for (u0, r0, _), (u1, r1, _) in itertools.pairwise(steps):
        if r0 > 0 and (r1 / r0 - 1) < (u1 / u0 - 1) / 2:
            found.append(f"throughput grew by less than half the added load from {u0} users")
            break
    slow = next((u for u, _, p in steps if p > 1000), None)
    found.append(f"p95 above 1 s from {slow} users" if slow else "p95 under 1 s at every step")
    return "; ".join(found + lines)


DRIFT_MIN_RUN = 600.0  # a run at least this long (steady part) gets the drift check
DRIFT_WINDOW = 300.0  # seconds compared at each end


def drift(history: Path, scenario: Scenario) -> str:
    """A long run's first and last 5 minutes of its steady part side by side: the aggregated
    req/s (mean) and p95 (median of locust's rolling p95), so that a slowdown that grows with
    time (a leak, a table that grows without its index, a backlog) shows. Empty for a short or
    stepped run."""
    if len(scenario.stages) != 1 or scenario.duration - scenario.ramp_seconds < DRIFT_MIN_RUN:
        return ""
    samples = _aggregated_history(history)
    if not samples:
        return ""
    t0 = samples[0][0]
    start, end = scenario.ramp_seconds, scenario.duration
    first = [s for s in samples if start <= s[0] - t0 < start + DRIFT_WINDOW and s[2] > 0]
    last = [s for s in samples if end - DRIFT_WINDOW <= s[0] - t0 < end and s[2] > 0]
    if not first or not last:
        return ""

    def figures(window: list[tuple[int, float, float]]) -> tuple[float, float]:
        p95s = sorted(s[2] for s in window)
        return sum(s[1] for s in window) / len(window), p95s[len(p95s) // 2]

    (rps0, p0), (rps1, p1) = figures(first), figures(last)
    change = f"{100 * (p1 / p0 - 1):+.0f} %" if p0 else "n/a"
    return (
        f"first 5 min of the steady part {rps0:.1f} req/s, p95 {p0:.0f} ms; last 5 min "
        f"{rps1:.1f} req/s, p95 {p1:.0f} ms (p95 {change})"
    )


def _ms(value: float) -> str:
    return f"{value:.0f}"


def table(results: list[Result]) -> str:
    lines = [
        "| scenario | role: task | requests | req/s | p50 ms | p95 ms | p99 ms | max ms "
        "| errors | verdict |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for result in results:
        for row in result.rows:
            verdict = row.verdict
            if row.problems:
                verdict += ": " + "; ".join(row.problems)
            name = "all requests" if row.name == "Aggregated" else row.name
            lines.append(
                f"| {result.scenario} | {name} | {row.requests} | {row.rps:.1f} | {_ms(row.p50)} "
                f"| {_ms(row.p95)} | {_ms(row.p99)} | {_ms(row.max)} | {row.failures} "
                f"| {verdict} |"
            )
    return "\n".join(lines)


def summary(result: Result) -> list[str]:
    out = [
        f"**{result.scenario}** — {result.description}; peak {result.users} users, "
        f"{result.duration_s:.0f} s: **{'PASS' if result.passed else 'FAIL'}**"
    ]
    if result.issuing:
        i = result.issuing
        accepted = f"{i.accepted_in_60s} of {i.issued} accepted by the sandbox within 60 s"
        if i.all_accepted_after_s is not None:
            accepted += f" (all {i.all_accepted_after_s:.0f} s after the end)"
        elif i.other or i.rejected:
            rest = dict(i.other)
            if i.rejected:
                rest["rejected"] = i.rejected
            accepted += " (not accepted: " + ", ".join(f"{k} {v}" for k, v in rest.items()) + ")"
        out.append(
            f"- issuing: {i.issued} documents, {i.docs_per_min:.0f} docs/min in the steady part; "
            f"{accepted}; folios {i.folios}; CAFs used: {i.cafs_used}"
        )
    for what, ok in result.checks:
        out.append(f"- {'pass' if ok else 'FAIL'}: {what}")
    if result.saturation:
        out.append(f"- stress: {result.saturation}")
    if result.drift:
        out.append(f"- over time: {result.drift}")
    if result.cpu:
        cores = os.cpu_count() or 1
        out.append(
            f"- CPU over the run, % of one core ({cores} cores = {100 * cores} %): "
            + ", ".join(f"{k} {v:.0f} %" for k, v in result.cpu.items())
        )
    for note in result.notes:
        out.append(f"- {note}")
    if result.settings:
        out.append("- settings: " + ", ".join(f"{k}={v}" for k, v in result.settings.items()))
    for name, error, count in result.failures[:8]:
        out.append(f"- error ×{count} in {name}: {error[:200]}")
    for process, lines in result.profile.items():
        out.append(f"- profile of {process} (py-spy):")
        out.append("")
        out.append("```")
        out.extend(lines)
        out.append("```")
    return out


def markdown(results: list[Result]) -> str:
    parts = ["# Load test results", "", table(results), ""]
    for result in results:
        parts.extend(summary(result))
        parts.append("")
    return "\n".join(parts)


def to_json(results: list[Result]) -> str:
    def encode(result: Result) -> dict:
        data = asdict(result)
        data["passed"] = result.passed
        for row, raw in zip(result.rows, data["rows"], strict=True):
            raw["error_rate"] = row.error_rate
        return data

    return json.dumps([encode(r) for r in results], indent=1, ensure_ascii=False)
