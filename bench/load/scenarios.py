"""The load suite's scenarios: who runs (the mix of user classes), how many over time (stages),
and the thresholds each is judged by.

The targets come from issue 18 and the product's plan (../shared/OPS.md): issuing through the
API at 1,000+ documents per minute for 10 minutes with p95 < 500 ms, no error and every document
accepted by the sandbox within a minute of the end; API reads at 200 users with p95 < 300 ms;
500 concurrent users of the mixed scenario with p95 < 500 ms and p99 < 1 s (error rate under
0.5 %); the single create or issue request p50 < 50 ms at 5 users.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Threshold:
    """Limits for the rows `match` selects: "all" is the aggregated row, a text ending in ":"
    every request of that role ("reader:"), anything else one request by name. Times in ms,
    `errors` as a fraction of the requests."""

    match: str
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    errors: float | None = None

    def applies(self, name: str) -> bool:
        if self.match == "all":
            return name == "Aggregated"
        if self.match.endswith(":"):
            return name.startswith(self.match)
        return name == self.match

    def describe(self) -> str:
        parts = [
            f"{label}<{value:g}ms"
            for label, value in (("p50", self.p50), ("p95", self.p95), ("p99", self.p99))
            if value is not None
        ]
        if self.errors is not None:
            parts.append(f"errors<={self.errors:.1%}" if self.errors else "no error")
        return f"{self.match} " + " ".join(parts)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    # (until_s, users, spawn_rate): the user count until that second of the run.
    stages: tuple[tuple[float, int, float], ...]
    # user class -> {"weight": n} or {"fixed": n}
    mix: dict[str, dict[str, int]]
    thresholds: tuple[Threshold, ...] = ()
    # Documents per minute the integrators are paced to offer (None: back to back).
    issue_rate: float | None = None
    # Documents per minute that must be issued in the steady part of the run.
    min_docs_per_min: float | None = None
    # Every document issued in the run accepted by the sandbox within 60 s of the end.
    accept_all: bool = False
    # Report where throughput stops growing with users (stress).
    find_saturation: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def duration(self) -> float:
        return self.stages[-1][0]

    @property
    def peak_users(self) -> int:
        return max(users for _, users, _ in self.stages)

    @property
    def ramp_seconds(self) -> float:
        """When the first stage's users are all running: the steady part starts there."""
        _, users, rate = self.stages[0]
        return min(users / rate if rate else 0.0, self.stages[0][0])

    def integrators_at_peak(self) -> int:
        spec = self.mix.get("IntegratorUser")
        if not spec:
            return 0
        if "fixed" in spec:
            return spec["fixed"]
        total = sum(s.get("weight", 0) for s in self.mix.values() if "fixed" not in s)
        fixed = sum(s["fixed"] for s in self.mix.values() if "fixed" in s)
        return max(1, round((self.peak_users - fixed) * spec["weight"] / total))

    def issue_pace(self) -> float:
        """Seconds per create+issue of each integrator, so that together they offer
        `issue_rate` documents per minute (0: back to back)."""
        if not self.issue_rate:
            return 0.0
        return self.integrators_at_peak() * 60.0 / self.issue_rate

    def with_overrides(
        self, *, users: int | None, duration: float | None, issue_rate: float | None = None
    ) -> Scenario:
        """Scale the user counts so the peak is `users`, and the stage ends so the run lasts
        `duration` seconds; `issue_rate` replaces the documents/min the integrators offer (0:
        back to back). The thresholds stay."""
        stages, mix = self.stages, self.mix
        offered = self.issue_rate if issue_rate is None else (issue_rate or None)
        if users:
            factor = users / self.peak_users
            stages = tuple(
                (until, max(1, round(n * factor)), max(1.0, rate * factor))
                for until, n, rate in stages
            )
            mix = {
                cls: ({"fixed": max(1, math.floor(s["fixed"] * factor))} if "fixed" in s else s)
                for cls, s in mix.items()
            }
            if sum(s.get("fixed", 0) for s in mix.values()) > max(n for _, n, _ in stages):
                raise ValueError(f"--users {users} is fewer than the fixed users of {self.name}")
        if duration:
            factor = duration / self.duration
            stages = tuple((until * factor, n, rate) for until, n, rate in stages)
        return replace(self, stages=stages, mix=mix, issue_rate=offered)


MIXED = {
    "StaffUser": {"weight": 35},
    "ReaderUser": {"weight": 40},
    "IntegratorUser": {"weight": 20},
    "AccountantUser": {"weight": 5},
}
NO_ERRORS = Threshold("all", errors=0.0)
PLAN_LATENCY = Threshold("all", p95=500, p99=1000, errors=0.005)

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "smoke",
            "every role at once, few users; create and issue back to back by 5 integrators",
            stages=((30, 9, 9),),
            mix={
                "IntegratorUser": {"fixed": 5},
                "BatchUser": {"fixed": 1},
                "StaffUser": {"fixed": 1},
                "AccountantUser": {"fixed": 1},
                "ReaderUser": {"fixed": 1},
            },
            thresholds=(
                Threshold("integrator: create factura 33", p50=50),
                Threshold("integrator: issue", p50=50),
                NO_ERRORS,
            ),
        ),
        Scenario(
            "reads",
            "API reads (list, detail, search, F29, /ready) by 200 users, 1–3 s think time",
            stages=((120, 200, 20),),
            mix={"ReaderUser": {"weight": 1}},
            thresholds=(Threshold("reader:", p95=300), NO_ERRORS),
        ),
        Scenario(
            "issue",
            "create + issue a factura 33 through the API at 1,000 documents/min",
            stages=((180, 25, 5),),
            mix={"IntegratorUser": {"weight": 1}},
            issue_rate=1050,
            thresholds=(Threshold("integrator:", p95=500), NO_ERRORS),
            min_docs_per_min=1000,
            accept_all=True,
        ),
        Scenario(
            "batch",
            "issuing through the batch endpoint: 5 integrators, each 20 drafts then one "
            "issue-batch request, back to back",
            stages=((120, 5, 5),),
            mix={"BatchUser": {"weight": 1}},
            thresholds=(NO_ERRORS,),
            accept_all=True,
        ),
        Scenario(
            "mixed",
            "500 users: staff in the UI, API readers, integrators (500 documents/min), accountants",
            stages=((180, 500, 25),),
            mix=MIXED,
            issue_rate=500,
            thresholds=(PLAN_LATENCY,),
        ),
        Scenario(
            "load",
            "issuing through the API at 1,000 documents/min, sustained",
            stages=((600, 25, 5),),
            mix={"IntegratorUser": {"weight": 1}},
            issue_rate=1050,
            thresholds=(Threshold("integrator:", p95=500), NO_ERRORS),
            min_docs_per_min=1000,
            accept_all=True,
        ),
        Scenario(
            "stress",
            "the mixed users in 12 steps of 50 up to 600: where it saturates",
            stages=tuple((30.0 * (i + 1), 50 * (i + 1), 25.0) for i in range(12)),
            mix=MIXED,
            issue_rate=600,
            find_saturation=True,
            notes=("no pass/fail thresholds: the report says where throughput stops growing",),
        ),
        Scenario(
            "spike",
            "mixed users: 20, a jump to 400 (200/s), back to 20, a third of the run each",
            stages=((60, 20, 20), (120, 400, 200), (180, 20, 200)),
            mix=MIXED,
            issue_rate=400,
            thresholds=(Threshold("all", p99=2000, errors=0.005),),
        ),
        Scenario(
            "soak",
            "100 mixed users (integrators at 500 documents/min), long",
            stages=((1800, 100, 10),),
            mix=MIXED,
            issue_rate=500,
            thresholds=(PLAN_LATENCY,),
            accept_all=True,
        ),
    )
}
