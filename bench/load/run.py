"""The load suite in one command: start the stack on loopback, seed it, run locust headless, print
one table, and exit non-zero when a threshold is missed.

    .venv/bin/python bench/load/run.py --scenario smoke
    .venv/bin/python bench/load/run.py --scenario reads --users 100 --duration 60
    .venv/bin/python bench/load/run.py --all

Exit status: 0 every threshold met, 1 a threshold missed, 2 the stack or locust could not run
(one line says why), 130 interrupted. The table is also written as Markdown and JSON to
var/load/<scenario>-<timestamp>.{md,json}. bench/load/README.md has the details.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.load import profile, report  # noqa: E402
from bench.load.scenarios import SCENARIOS, Scenario  # noqa: E402
from bench.load.stack import BIN, Stack, StackConfig, StackError  # noqa: E402

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
ACCEPT_WINDOW = 60.0  # seconds after the end in which every issued document must be accepted
ACCEPTED = ("accepted", "accepted_with_objections")


class CpuSampler(threading.Thread):
    """CPU time of each process group of the stack (and of PostgreSQL and locust) over a run,
    sampled every second so that recycled gunicorn workers are counted too."""

    def __init__(self, stack: Stack, locust_pid: int):
        super().__init__(daemon=True, name="cpu-sampler")
        self.stack, self.locust_pid = stack, locust_pid
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.group: dict[int, str] = {}
        self.started_during: set[int] = set()
        self.alive_at_start: set[int] = set()
        self.stop_event = threading.Event()
        self.t0 = self.t1 = time.monotonic()
        self.rounds = 0
        self.busy_first = self.busy_last = 0.0
        # Per interval, the busiest gunicorn worker's CPU and all workers' CPU: how evenly the
        # load spreads, whatever recycling does to the pids.
        self.busiest = self.workers_total = 0.0
        # Resident memory of the app's processes (gunicorn workers together, each Celery worker
        # with its pool), at the first and last sample and at the peak: a long run's leak shows.
        self.rss_first: dict[str, float] = {}
        self.rss_last: dict[str, float] = {}
        self.rss_peak: dict[str, float] = {}

    def _groups(self) -> dict[int, str]:
        import psutil

        groups: dict[int, str] = {}
        for name, pids in self.stack.pids().items():
            for n, pid in enumerate(pids):
                label = name
                if name == "gunicorn":
                    label = "gunicorn master" if n == 0 else f"gunicorn worker {pid}"
                elif name == "worker":
                    label = "celery worker (sii)"
                elif name == "worker-aux":
                    label = "celery worker (pdf, email, ai, bulk)"
                groups[pid] = label
        with contextlib.suppress(psutil.Error):
            locust = psutil.Process(self.locust_pid)
            for p in [locust, *locust.children(recursive=True)]:
                groups[p.pid] = "locust"
        for p in psutil.process_iter(["name"]):
            if p.info["name"] in ("postgres", "postmaster"):
                groups[p.pid] = "postgres (cluster)"
        return groups

    def sample(self) -> None:
        import psutil

        machine = psutil.cpu_times()
        busy = machine.user + machine.nice + machine.system + machine.irq + machine.softirq
        busy += getattr(machine, "steal", 0.0)
        if self.rounds == 0:
            self.busy_first = busy
        self.busy_last = busy
        deltas = []
        for pid, label in self._groups().items():
            try:
                times = psutil.Process(pid).cpu_times()
            except psutil.Error:
                continue
            used = times.user + times.system
            if label.startswith("gunicorn worker"):
                deltas.append(used - self.last.get(pid, 0.0 if self.rounds else used))
            if pid not in self.first:
                self.first[pid] = used if self.rounds == 0 else 0.0
                if self.rounds == 0:
                    self.alive_at_start.add(pid)
                else:
                    self.started_during.add(pid)
            self.last[pid] = used
            self.group[pid] = label
        if deltas:
            self.busiest += max(deltas)
            self.workers_total += sum(deltas)
        self._sample_memory()
        self.rounds += 1
        self.t1 = time.monotonic()

    def _sample_memory(self) -> None:
        import psutil

        rss: dict[str, float] = {}
        for pid, label in self.group.items():
            if label in ("postgres (cluster)", "locust", "gunicorn master"):
                continue  # PostgreSQL's shared buffers are not the app's memory
            key = "gunicorn workers" if label.startswith("gunicorn worker") else label
            try:
                process = psutil.Process(pid)
                family = [process]
                if key.startswith("celery"):
                    family += process.children(recursive=True)
                used = sum(p.memory_info().rss for p in family)
            except psutil.Error:
                continue
            rss[key] = rss.get(key, 0.0) + used / 2**20
        if not rss:
            return
        if not self.rss_first:
            self.rss_first = dict(rss)
        self.rss_last = rss
        for key, value in rss.items():
            self.rss_peak[key] = max(self.rss_peak.get(key, 0.0), value)

    def memory_note(self) -> str:
        parts = [
            f"{key} {self.rss_first.get(key, 0.0):.0f} → {value:.0f} MB "
            f"(peak {self.rss_peak.get(key, value):.0f})"
            for key, value in sorted(self.rss_last.items())
        ]
        return "memory (RSS) at the start → the end: " + ", ".join(parts) if parts else ""

    def run(self) -> None:
        self.t0 = time.monotonic()
        while not self.stop_event.is_set():
            self.sample()
            self.stop_event.wait(1.0)

    def finish(self) -> tuple[dict[str, float], list[str]]:
        self.stop_event.set()
        self.join(5)
        self.sample()
        wall = max(self.t1 - self.t0, 1e-6)
        totals: dict[str, float] = {}
        workers: list[tuple[float, int]] = []
        for pid, label in self.group.items():
            used = self.last[pid] - self.first[pid]
            if label.startswith("gunicorn worker"):
                totals["gunicorn workers"] = totals.get("gunicorn workers", 0.0) + used
                if pid in self.alive_at_start:
                    workers.append((used, pid))
            else:
                totals[label] = totals.get(label, 0.0) + used
        cpu = {k: 100 * v / wall for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}
        # What else ran on the machine meanwhile (another test suite, a build): the figures are
        # only as clean as this is small.
        machine = 100 * (self.busy_last - self.busy_first) / wall
        cpu["other processes"] = max(0.0, machine - sum(cpu.values()))
        cpu["machine busy"] = machine
        notes = []
        if workers:
            shares = ", ".join(f"{100 * u / wall:.0f} %" for u, _ in sorted(workers, reverse=True))
            notes.append(f"gunicorn workers alive for the whole run, each: {shares}")
        n = sum(1 for pid in self.alive_at_start if self.group[pid].startswith("gunicorn worker"))
        if self.workers_total > 0 and n:
            notes.append(
                f"busiest gunicorn worker's share of the workers' CPU: "
                f"{100 * self.busiest / self.workers_total:.0f} % (even: {100 / n:.0f} %)"
            )
        recycled = sum(
            1 for pid in self.started_during if self.group[pid].startswith("gunicorn worker")
        )
        if recycled:
            notes.append(f"gunicorn workers started during the run (recycled): {recycled}")
        memory = self.memory_note()
        if memory:
            notes.append(memory)
        return cpu, notes


def _db_now(stack: Stack) -> datetime:
    return stack.sql("SELECT now()")[0][0]


def run_locust(
    stack: Stack, scenario: Scenario, out_dir: Path, profile_dir: Path | None = None
) -> tuple[Path, dict[str, float], list[str], dict[str, list[str]]]:
    prefix = out_dir / scenario.name
    env = dict(stack.env)
    env.update(
        {
            "LOAD_FIXTURES": str(stack.fixtures_path),
            "LOAD_STAGES": json.dumps(scenario.stages),
            "LOAD_MIX": json.dumps(scenario.mix),
            "LOAD_ISSUE_PACE": str(scenario.issue_pace()),
        }
    )
    argv = [
        str(BIN / "locust"),
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        stack.base_url,
        "--csv",
        str(prefix),
        "--csv-full-history",
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--stop-timeout",
        "15",
        "--exit-code-on-error",
        "0",
        *scenario.mix,
    ]
    log = stack.logs / f"locust-{scenario.name}.log"
    with log.open("ab") as handle:
        locust = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    sampler = CpuSampler(stack, locust.pid)
    sampler.start()
    profilers = {}
    if profile_dir is not None:
        for process in stack.processes:
            if process.name in ("gunicorn", "worker", "worker-aux"):
                out = profile_dir / f"{scenario.name}-{process.name}.collapsed.txt"
                profilers[process.name] = profile.Profiler(
                    process.popen.pid, out, scenario.duration
                )
    deadline = time.monotonic() + scenario.duration + 120
    try:
        while locust.poll() is None:
            stack.check()
            if time.monotonic() > deadline:
                raise StackError(f"locust still running {scenario.duration + 120:.0f} s in")
            time.sleep(1)
    finally:
        if locust.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(locust.pid, signal.SIGKILL)
            locust.wait(5)
        cpu, notes = sampler.finish()
        for profiler in profilers.values():
            profiler.finish()
    if locust.returncode not in (0, 1):
        raise StackError(f"locust exited with rc {locust.returncode}; see {log}")
    summaries = {name: profile.summarise(p.out) for name, p in profilers.items()}
    for name, p in profilers.items():
        print(f"load: profile of {name} written to {p.out}", flush=True)
    return prefix, cpu, notes, summaries


def issuing(stack: Stack, scenario: Scenario, t_start: datetime) -> report.Issuing:
    """Count the documents issued during the run and wait up to ACCEPT_WINDOW seconds for the
    sandbox to accept them (polling the database), then check their folios."""
    end = time.monotonic()
    all_after = None
    while True:
        counts = dict(
            stack.sql(
                "SELECT status, count(*) FROM dte_dte WHERE created_at >= %s GROUP BY status",
                (t_start,),
            )
        )
        total = sum(counts.values())
        accepted = sum(counts.get(s, 0) for s in ACCEPTED)
        waited = time.monotonic() - end
        if total and accepted == total:
            all_after = waited
            break
        if waited >= ACCEPT_WINDOW:
            break
        stack.check()
        time.sleep(2)
    first, last = stack.sql(
        "SELECT min(created_at), max(created_at) FROM dte_dte WHERE created_at >= %s", (t_start,)
    )[0]
    per_min = 0.0
    if first is not None:
        steady_from = first.timestamp() + scenario.ramp_seconds
        span = last.timestamp() - steady_from
        if span > 0:
            steady = stack.sql(
                "SELECT count(*) FROM dte_dte WHERE created_at >= to_timestamp(%s)"
                " AND created_at <= %s",
                (steady_from, last),
            )[0][0]
            per_min = steady * 60 / span
    lo, hi, n, distinct, cafs = stack.sql(
        "SELECT min(folio), max(folio), count(*), count(DISTINCT folio), count(DISTINCT caf_id)"
        " FROM dte_dte WHERE tipo_dte = 33 AND created_at >= %s",
        (t_start,),
    )[0]
    before = stack.sql(
        "SELECT coalesce(max(folio), 0) FROM dte_dte WHERE tipo_dte = 33 AND created_at < %s",
        (t_start,),
    )[0][0]
    if not n:
        folios, ok = "none issued", True
    else:
        problems = []
        if distinct != n:
            problems.append(f"{n - distinct} repeated")
        if hi - lo + 1 != distinct:
            problems.append(f"{hi - lo + 1 - distinct} missing in the range")
        if lo != before + 1:
            problems.append(f"the run started at {lo}, after {before}")
        ok = not problems
        folios = f"{lo}–{hi}, " + ("consecutive, no gap" if ok else "; ".join(problems))
    counts = dict(
        stack.sql(
            "SELECT status, count(*) FROM dte_dte WHERE created_at >= %s GROUP BY status",
            (t_start,),
        )
    )
    other = {k: v for k, v in counts.items() if k not in ACCEPTED and k != "rejected"}
    return report.Issuing(
        issued=sum(counts.values()),
        docs_per_min=per_min,
        accepted_in_60s=accepted,
        rejected=counts.get("rejected", 0),
        other=other,
        all_accepted_after_s=all_after,
        folios=folios,
        folios_ok=ok,
        cafs_used=cafs or 0,
    )


def run_scenario(
    stack: Stack, scenario: Scenario, profile_dir: Path | None = None
) -> report.Result:
    print(
        f"load: {scenario.name}: {scenario.description} "
        f"(peak {scenario.peak_users} users, {scenario.duration:.0f} s)",
        flush=True,
    )
    t_start = _db_now(stack)
    prefix, cpu, notes, summaries = run_locust(stack, scenario, stack.run_dir, profile_dir)
    rows = report.read_stats(prefix, scenario.name)
    if not rows:
        raise StackError(f"locust wrote no stats; see {stack.logs}/locust-{scenario.name}.log")
    report.judge(rows, scenario)
    checks: list[tuple[str, bool]] = []
    seen = {r.name.split(":")[0] for r in rows if r.requests}
    for cls in scenario.mix:
        role = cls.removesuffix("User").lower()
        checks.append((f"{role} users made requests", role in seen))
    result_issuing = None
    if {"IntegratorUser", "BatchUser"} & set(scenario.mix):
        result_issuing = issuing(stack, scenario, t_start)
        checks.append((f"folios of the run: {result_issuing.folios}", result_issuing.folios_ok))
        if scenario.min_docs_per_min:
            checks.append(
                (
                    f"≥ {scenario.min_docs_per_min:g} docs/min issued "
                    f"(got {result_issuing.docs_per_min:.0f})",
                    result_issuing.docs_per_min >= scenario.min_docs_per_min,
                )
            )
        if scenario.accept_all:
            checks.append(
                (
                    f"every issued document accepted within {ACCEPT_WINDOW:.0f} s of the end "
                    f"({result_issuing.accepted_in_60s} of {result_issuing.issued})",
                    result_issuing.issued > 0
                    and result_issuing.accepted_in_60s == result_issuing.issued,
                )
            )
    settings = {
        k: stack.env.get(k, "default")
        for k in ("WEB_CONCURRENCY", "GUNICORN_THREADS", "GUNICORN_KEEPALIVE")
    }
    settings["celery concurrency"] = str(stack.config.worker_concurrency)
    settings["queues"] = ",".join(stack.queues)
    if scenario.issue_rate:
        settings["integrator pace s"] = f"{scenario.issue_pace():.2f}"
    result = report.Result(
        scenario=scenario.name,
        description=scenario.description,
        users=scenario.peak_users,
        duration_s=scenario.duration,
        rows=rows,
        issuing=result_issuing,
        checks=checks,
        cpu=cpu,
        saturation=report.saturation(prefix, scenario) if scenario.find_saturation else "",
        drift=report.drift(prefix, scenario),
        failures=report.read_failures(prefix),
        settings=settings,
        notes=notes,
        profile=summaries,
    )
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run the load suite against a stack started on loopback.",
        epilog="Scenarios: " + "; ".join(f"{s.name}: {s.description}" for s in SCENARIOS.values()),
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--scenario", help="one scenario, or several separated by commas: " + ", ".join(SCENARIOS)
    )
    which.add_argument("--all", action="store_true", help="every scenario, one after the other")
    parser.add_argument("--users", type=int, help="peak users (the stages scale to it)")
    parser.add_argument(
        "--issue-rate",
        type=float,
        help="documents/min the integrators are paced to offer together (0: back to back)",
    )
    parser.add_argument("--duration", type=float, help="seconds (the stages scale to it)")
    parser.add_argument("--keep", action="store_true", help="keep the database and the logs")
    parser.add_argument("--pg-host", default=os.environ.get("PGHOST", "127.0.0.1"))
    parser.add_argument("--pg-port", type=int, default=int(os.environ.get("PGPORT", "5432")))
    parser.add_argument("--pg-user", default=os.environ.get("PGUSER", "postgres"))
    parser.add_argument(
        "--redis-url", default="", help="use this Redis (default: a private redis-server)"
    )
    parser.add_argument("--web-concurrency", type=int, help="gunicorn workers (WEB_CONCURRENCY)")
    parser.add_argument("--threads", type=int, help="gunicorn threads (GUNICORN_THREADS)")
    parser.add_argument("--keepalive", type=int, help="gunicorn keep-alive s (GUNICORN_KEEPALIVE)")
    parser.add_argument("--worker-concurrency", type=int, default=4, help="Celery pool size")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="extra app setting"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample gunicorn and the Celery worker with py-spy during each scenario",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "load", help="result folder")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = list(SCENARIOS) if args.all else args.scenario.split(",")
    try:
        unknown = [n for n in names if n not in SCENARIOS]
        if unknown:
            raise ValueError(f"unknown scenario {unknown[0]!r}; one of {', '.join(SCENARIOS)}")
        scenarios = [
            SCENARIOS[n].with_overrides(
                users=args.users, duration=args.duration, issue_rate=args.issue_rate
            )
            for n in names
        ]
        extra = dict(item.split("=", 1) for item in args.env)
    except ValueError as exc:
        print(f"load: {exc}", file=sys.stderr)
        return 2
    stamp = datetime.now().astimezone().strftime("%Y%m%d-%H%M%S")
    args.out.mkdir(parents=True, exist_ok=True)
    run_dir = args.out / f"run-{stamp}-{os.getpid()}"
    if args.profile and profile.py_spy() is None:
        print("load: --profile needs py-spy (.venv/bin/pip install py-spy)", file=sys.stderr)
        return 2
    config = StackConfig(
        pg_host=args.pg_host,
        pg_port=args.pg_port,
        pg_user=args.pg_user,
        redis_url=args.redis_url,
        web_concurrency=args.web_concurrency,
        threads=args.threads,
        keepalive=args.keepalive,
        worker_concurrency=args.worker_concurrency,
        keep=args.keep,
        extra_env=extra,
    )
    stack = Stack(config, run_dir)

    def terminate(signum, frame):  # SIGTERM/SIGHUP: clean up as on Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    results: list[report.Result] = []
    failed_to_run = interrupted = False
    try:
        print(f"load: starting the stack on {stack.base_url} (logs in {stack.logs})", flush=True)
        started = time.monotonic()
        stack.start()
        print(
            f"load: stack ready in {time.monotonic() - started:.0f} s: database {stack.db_name}, "
            f"queues {','.join(stack.queues)}",
            flush=True,
        )
        profile_dir = args.out / f"profile-{stamp}" if args.profile else None
        if profile_dir is not None:
            profile_dir.mkdir(parents=True, exist_ok=True)
        for scenario in scenarios:
            results.append(run_scenario(stack, scenario, profile_dir))
    except StackError as exc:
        failed_to_run = True
        print(f"load: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        failed_to_run = interrupted = True
        print("load: interrupted", file=sys.stderr)
    finally:
        stack.stop()
        if not (args.keep or failed_to_run):
            shutil.rmtree(run_dir, ignore_errors=True)
        elif run_dir.exists():
            print(f"load: logs and locust CSVs kept in {run_dir}", file=sys.stderr)
    if results:
        label = "all" if args.all else "+".join(names)
        md, js = args.out / f"{label}-{stamp}.md", args.out / f"{label}-{stamp}.json"
        md.write_text(report.markdown(results))
        js.write_text(report.to_json(results))
        print()
        print(report.markdown(results))
        print(f"load: written {md} and {js}")
    if failed_to_run:
        return 130 if interrupted else 2
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
