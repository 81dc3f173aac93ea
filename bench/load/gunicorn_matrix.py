"""Measure gunicorn's workers, threads and keep-alive with the load suite: one run of the given
scenarios per configuration, each on a fresh stack, and one table of the results.

    .venv/bin/python bench/load/gunicorn_matrix.py --duration 60 \\
        --config 2,4,95 --config 2,4,2 --config 3,4,2 --scenario reads,issue --issue-rate 0

A configuration is WORKERS,THREADS,KEEPALIVE. The table goes to stdout and to
var/load/gunicorn-<timestamp>.md; bench/load/README.md keeps the figures measured.
"""

import argparse
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "bench" / "load" / "run.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", action="append", required=True, help="WORKERS,THREADS,KA")
    parser.add_argument("--scenario", default="reads,issue")
    parser.add_argument("--duration", default="60")
    parser.add_argument("--users")
    parser.add_argument("--issue-rate", default="0")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "load")
    args = parser.parse_args()
    lines = [
        "| workers × threads, keep-alive | scenario | req/s | p50 ms | p95 ms | p99 ms | errors "
        "| docs/min | busiest worker's share; recycled | other processes' CPU |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for config in args.config:
        workers, threads, keepalive = config.split(",")
        out = args.out / f"matrix-{workers}-{threads}-{keepalive}"
        argv = [sys.executable, str(RUNNER), "--scenario", args.scenario]
        argv += ["--duration", args.duration, "--issue-rate", args.issue_rate, "--out", str(out)]
        argv += ["--web-concurrency", workers, "--threads", threads, "--keepalive", keepalive]
        if args.users:
            argv += ["--users", args.users]
        print("matrix:", " ".join(argv[2:]), flush=True)
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
        found = sorted(out.glob("*.json"))
        if done.returncode not in (0, 1) or not found:
            print(f"matrix: {config} failed: {done.stderr.strip()[-300:]}", file=sys.stderr)
            continue
        for result in json.loads(found[-1].read_text()):
            total = next(r for r in result["rows"] if r["name"] == "Aggregated")
            issuing = result.get("issuing") or {}
            each = "; ".join(n.split(": ", 1)[1] for n in result.get("notes", []))
            lines.append(
                f"| {workers} × {threads}, {keepalive} s | {result['scenario']} "
                f"| {total['rps']:.1f} | {total['p50']:.0f} | {total['p95']:.0f} "
                f"| {total['p99']:.0f} | {total['failures']} "
                f"| {issuing.get('docs_per_min', 0):.0f} | {each} "
                f"| {result['cpu'].get('other processes', 0):.0f} % |"
            )
        print(lines[-1], flush=True)
    table = "\n".join(lines)
    print(table)
    stamp = datetime.now().astimezone().strftime("%Y%m%d-%H%M%S")
    (args.out / f"gunicorn-{stamp}.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
